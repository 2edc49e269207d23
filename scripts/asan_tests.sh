#!/usr/bin/env bash
# Build _lateral with AddressSanitizer + UndefinedBehaviorSanitizer in a
# scratch copy and run the test suite (or the given pytest arguments) with
# the sanitizer runtime preloaded into the interpreter.  Any report fails.
# Built with clang-19 when it is installed, else gcc; LATERAL_ASAN_CLANG
# names another clang, or is empty to force gcc.
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
# Clang 19 when installed (CI installs it): its sanitizer runtime has fork
# handlers (LLVM 18+, llvm/llvm-project#75290).  GCC 12's libasan has none,
# so a child forked while another thread was inside the sanitizer's
# allocator can deadlock when it starts a thread: test_fork_with_an_open_pool
# hung that way in 4 of 10 sanitized runs, and in none of 15 with clang 19.
clang="${LATERAL_ASAN_CLANG-$(command -v clang-19 || true)}"
if [ -n "$clang" ]; then
    runtimes=("$("$clang" -print-file-name=libclang_rt.asan-x86_64.so)")  # UBSan's included
    build=(env CC="$clang" LDSHARED="$clang -shared" LDFLAGS="-shared-libsan")
    hint="install clang-19 and libclang-rt-19-dev"
else
    runtimes=("$(gcc -print-file-name=libasan.so)" "$(gcc -print-file-name=libubsan.so)")
    build=(env)
    hint="install gcc's libasan/libubsan"
fi
LATERAL_SANITIZE=address,undefined "${build[@]}" "$work/.build-venv/bin/python" setup.py -q build_ext --inplace --force >/dev/null

for lib in "${runtimes[@]}"; do
    [ -f "$lib" ] || { echo "asan_tests.sh: sanitizer runtime not found ($lib); $hint" >&2; exit 2; }
done
# A build that silently lost the flags would make the whole run meaningless.
ldd python/_lateral*.so | grep -E 'libasan|libclang_rt.asan' >/dev/null || { echo "asan_tests.sh: _lateral was not built with ASan" >&2; exit 2; }
export LD_PRELOAD="$(IFS=:; echo "${runtimes[*]}")"
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
# Without clang, GCC 12's libasan (no fork handlers, see above): a child
# forked while another thread was inside the sanitizer's allocator can
# deadlock on its first malloc.  Tests that
# fork (process pools, or a child that forks with a pool open) then hang
# until pytest-timeout fails them, or until the test's own deadline for the
# child it runs passes (subprocess.TimeoutExpired).  Such timeouts -- and
# only those, with no sanitizer report -- are run once more; the plain test
# run before this one has no such allowance.
status=0
COLUMNS=400 "$py" -m pytest -p no:cacheprovider -q -rf "${@:-tests}" 2>&1 | tee "$work/pytest.log" || status=${PIPESTATUS[0]}
failed="$(grep '^FAILED ' "$work/pytest.log" | sed 's/^FAILED \([^ ]*\).*/\1/' || true)"
if [ "$status" = 1 ] && [ -z "$(ls -A "$reports")" ] && [ -n "$failed" ] &&
   ! grep '^FAILED ' "$work/pytest.log" | grep -vqE 'Failed: Timeout|subprocess.TimeoutExpired'; then
    echo "asan_tests.sh: only timeouts failed (see above); running them once more:" >&2
    echo "$failed" >&2
    status=0
    # shellcheck disable=SC2086
    "$py" -m pytest -p no:cacheprovider -q -rf $failed || status=$?
fi
if [ -n "$(ls -A "$reports")" ]; then
    echo "asan_tests.sh: sanitizer reports:" >&2
    for f in "$reports"/*; do echo "== $f" >&2; cat "$f" >&2; done
    status=1
fi
exit "$status"
