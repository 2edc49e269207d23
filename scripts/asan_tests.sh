#!/usr/bin/env bash
# Build _lateral with AddressSanitizer + UndefinedBehaviorSanitizer in a
# scratch copy and run the test suite (or the given pytest arguments) with
# the sanitizer runtime preloaded into the interpreter.  Any report fails.
set -euo pipefail
# The interpreter whose site-packages hold the test dependencies.
py="${PYTHON:-python3}"
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
"$py" -m venv "$work/.build-venv"
"$work/.build-venv/bin/python" -m pip install -q 'setuptools>=77' >/dev/null
LATERAL_SANITIZE=address,undefined "$work/.build-venv/bin/python" setup.py -q build_ext --inplace --force >/dev/null

libasan="$(gcc -print-file-name=libasan.so)"
libubsan="$(gcc -print-file-name=libubsan.so)"
for lib in "$libasan" "$libubsan"; do
    [ -f "$lib" ] || { echo "asan_tests.sh: sanitizer runtime not found ($lib); install gcc's libasan/libubsan" >&2; exit 2; }
done
# A build that silently lost the flags would make the whole run meaningless.
ldd python/_lateral*.so | grep -q libasan || { echo "asan_tests.sh: _lateral was not built with ASan" >&2; exit 2; }
export LD_PRELOAD="$libasan:$libubsan"
# Python's own arenas hide use-after-free of objects from ASan.
export PYTHONMALLOC=malloc
# Tells the tests that resident-memory figures are the sanitizer's, not ours.
export LATERAL_SANITIZED=1
# CPython leaks by design at exit; odr/alloc checks are noise for an extension.
# Reports go to files as well, so that one from a child process whose
# output a test does not read still fails the run.
reports="$work/sanitizer-reports"
mkdir "$reports"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_odr_violation=0:allocator_may_return_null=1:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan"
export PYTHONPATH="$work/python${PYTHONPATH:+:$PYTHONPATH}"

"$py" -c "import _lateral, sys; assert _lateral.__file__.startswith('$work'), _lateral.__file__"
status=0
"$py" -m pytest -p no:cacheprovider -q "${@:-tests}" || status=$?
if [ -n "$(ls -A "$reports")" ]; then
    echo "asan_tests.sh: sanitizer reports:" >&2
    for f in "$reports"/*; do echo "== $f" >&2; cat "$f" >&2; done
    status=1
fi
exit "$status"
