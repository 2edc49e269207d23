#!/usr/bin/env bash
# Build _lateral with AddressSanitizer + UndefinedBehaviorSanitizer in a
# scratch copy and run the test suite (or the given pytest arguments) with
# the sanitizer runtime preloaded into the interpreter.  Any report fails.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/lateral-asan.XXXXXX)"
trap 'rm -rf "$work"' EXIT

git -C "$repo" ls-files -z | (cd "$repo" && xargs -0 cp --parents -t "$work")
# Untracked work in progress is tested too, but never stale build products.
(cd "$repo" && git ls-files -z --others --exclude-standard) | (cd "$repo" && xargs -0 -r cp --parents -t "$work")
cd "$work"
rm -rf build python/_lateral*.so
# pyproject.toml needs setuptools >= 77 (PEP 639 license); the interpreter's
# own may be older, so build in a throw-away venv of the same Python.
python3 -m venv "$work/.build-venv"
"$work/.build-venv/bin/python" -m pip install -q 'setuptools>=77' >/dev/null
LATERAL_SANITIZE=address,undefined "$work/.build-venv/bin/python" setup.py -q build_ext --inplace --force >/dev/null

libasan="$(gcc -print-file-name=libasan.so)"
libubsan="$(gcc -print-file-name=libubsan.so)"
export LD_PRELOAD="$libasan:$libubsan"
# Python's own arenas hide use-after-free of objects from ASan.
export PYTHONMALLOC=malloc
# Tells the tests that resident-memory figures are the sanitizer's, not ours.
export LATERAL_SANITIZED=1
# CPython leaks by design at exit; odr/alloc checks are noise for an extension.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_odr_violation=0:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONPATH="$work/python${PYTHONPATH:+:$PYTHONPATH}"

python3 -c "import _lateral, sys; assert _lateral.__file__.startswith('$work'), _lateral.__file__"
python3 -m pytest -p no:cacheprovider -q "${@:-tests}"
