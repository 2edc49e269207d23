#!/usr/bin/env bash
# Build lateral and run its test suite on other CPythons than the machine's own.
#
#   bash scripts/test_pythons.sh [VERSION...]     default: 3.10 3.13 3.14 3.15
#   bash scripts/test_pythons.sh --prepare VERSION   only make the chroot ready
#
# A version is taken from pyenv or PATH (pythonX.Y) when the machine has it,
# else from a Debian sid chroot (scripts/debian_python.sh: Debian's own build
# of that CPython, plus redis-server, made under $LATERAL_CHROOT).  Each
# version gets a scratch copy of the sources, a fresh venv, `pip install
# '.[test]'` (which compiles the extension) and `python -m pytest`, so that
# several versions can run at once.  Logs go to $LATERAL_CI_LOGS.  One line
# per version; the exit status is 1 if any version failed, or if one is
# missing and LATERAL_REQUIRE_ALL_PYTHONS=1.
set -uo pipefail
# Started in the background (`&`) by a script, we inherit SIGINT and SIGQUIT
# ignored (POSIX), and so would every Python below us, which then never sees
# a KeyboardInterrupt: the suite's Ctrl-C tests need the default action.
if [ -z "${LATERAL_SIGNALS_RESET:-}" ]; then
    export LATERAL_SIGNALS_RESET=1
    exec python3 -c 'import os, signal, sys
for number in (signal.SIGINT, signal.SIGQUIT):
    signal.signal(number, signal.SIG_DFL)
os.execvp("bash", ["bash", *sys.argv[1:]])' "$0" "$@"
fi
repo="$(cd "$(dirname "$0")/.." && pwd)"
chroot_root="${LATERAL_CHROOT:-/tmp/lateral-sid}"
logs="${LATERAL_CI_LOGS:-/tmp/lateral-ci-logs}"
mkdir -p "$logs"

host_python() {  # the interpreter for version $1 on this machine, if any
    local candidate
    for candidate in "$HOME/.pyenv/versions/$1".*/bin/python"$1" "$(command -v "python$1" || true)"; do
        [ -x "$candidate" ] && { echo "$candidate"; return 0; }
    done
    return 1
}

chroot_ready() {
    [ -x "$chroot_root/usr/bin/python$1" ] && [ -x "$chroot_root/usr/bin/redis-server" ] &&
        [ -x "$chroot_root.run" ]
}

prepare_chroot() {  # Debian's CPython $1 and redis-server in the chroot
    chroot_ready "$1" && return 0
    bash "$repo/scripts/debian_python.sh" "$1" "$chroot_root" &&
    chroot "$chroot_root" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends redis-server >/dev/null
}

scratch_copy() {  # the sources git knows (work in progress too) in a fresh folder $1
    rm -rf "$1" && mkdir -p "$1" &&
    git -C "$repo" ls-files -z --cached --others --exclude-standard |
        (cd "$repo" && xargs -0 cp --parents -t "$1")
}

suite() {  # $1: runner prefix ('' or in_chroot); $2: python; $3: venv; run in the copy
    local run="$1" python="$2" venv="$3"
    $run "$python" -m venv --clear "$venv" &&
    $run "$venv/bin/python" -m pip install -q --upgrade pip &&
    $run "$venv/bin/python" -m pip install -q '.[test]' &&
    $run "$venv/bin/python" -m pytest -q -p no:cacheprovider
}

in_chroot() { "$chroot_root.run" "$@"; }

test_version() {  # prints one line; returns 0 if the suite passed or the version is missing
    local version="$1" log="$logs/python$1.log" start=$SECONDS where python status
    local src="/tmp/lateral-src$1"
    scratch_copy "$src" || { echo "python$version: cannot copy the sources"; return 1; }
    if python="$(host_python "$version")"; then
        where="$python"
        (cd "$src" && suite "" "$python" "/tmp/lateral-venv$version") >"$log" 2>&1
    elif prepare_chroot "$version" >"$log" 2>&1; then
        where="Debian sid chroot"
        (cd "$src" && suite in_chroot "python$version" "/tmp/lateral-venv$version") >>"$log" 2>&1
    else
        echo "python$version: not available here (see $log)"
        [ "${LATERAL_REQUIRE_ALL_PYTHONS:-0}" != 1 ]
        return
    fi
    status=$?
    local summary
    summary="$(grep -E '(passed|failed|error)' "$log" | tail -1)"
    if [ $status -eq 0 ]; then
        echo "python$version ($where): ok in $((SECONDS - start)) s: $summary"
    else
        echo "python$version ($where): FAILED in $((SECONDS - start)) s: $summary"
        grep -E '^(FAILED|ERROR) ' "$log" | head -20
        tail -30 "$log"
    fi
    return $status
}

if [ "${1:-}" = --prepare ]; then
    host_python "$2" >/dev/null || prepare_chroot "$2"
    exit
fi
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.10 3.13 3.14 3.15)
failed=0
for version in "${versions[@]}"; do
    test_version "$version" || failed=1
done
exit $failed
