#!/usr/bin/env bash
# Build the sdist and the wheel as a release would (`python -m build`: the
# wheel is built from the unpacked sdist), run `twine check` on them, check
# that the sdist carries everything the build needs, and install the wheel in
# a fresh venv where a task of each package runs.
#
#   PYTHON=python3 bash scripts/check_dist.sh [OUTDIR]
#
# PYTHON must have `build` and `twine` installed.
set -euo pipefail
py="${PYTHON:-python3}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/lateral-dist.XXXXXX)"
trap 'rm -rf "$work"' EXIT
out="${1:-$work/dist}"
fail() { echo "check_dist.sh: $*" >&2; exit 1; }

# A clean copy of the files git tracks (and the untracked ones it does not
# ignore: work in progress is checked too), so that a developer's build
# products or in-place extension never reach the distributions.
files() { git -C "$repo" ls-files --cached --others --exclude-standard "$@"; }
mkdir "$work/src"
files -z | (cd "$repo" && xargs -0 cp --parents -t "$work/src")
"$py" -m build --outdir "$out" "$work/src" >"$work/build.log" 2>&1 ||
    { cat "$work/build.log" >&2; fail "python -m build failed"; }
sdist=("$out"/lateral-*.tar.gz)
wheel=("$out"/lateral-*.whl)
[ -f "${sdist[0]}" ] && [ -f "${wheel[0]}" ] || fail "build made no sdist or no wheel in $out"
"$py" -m twine check --strict "${sdist[0]}" "${wheel[0]}"

# The sdist must hold every C source and header and every top-level module.
listing="$(tar tzf "${sdist[0]}" | sed 's|^[^/]*/||')"
needed="$(files 'src/_lateral/*.c' 'src/_lateral/*.h' 'python/*.py' LICENSE | sort -u)"
missing="$(comm -23 <(echo "$needed" | sort) <(echo "$listing" | sort))"
[ -z "$missing" ] || fail "the sdist lacks: $missing"

# The wheel, in a venv of its own, run from a folder with no sources in it.
"$py" -m venv "$work/venv"
"$work/venv/bin/pip" install -q "${wheel[0]}"
expected="$("$py" -c 'import tomllib, sys; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$repo/pyproject.toml")"
(cd "$work" && "$work/venv/bin/python" - "$work/venv" "$expected" <<'PY'
import sys
import _lateral, parallel, pylateral, strand

venv, expected = sys.argv[1], sys.argv[2]
assert _lateral.__file__.startswith(venv), f"_lateral comes from {_lateral.__file__}"
versions = {p.__name__: p.__version__ for p in (pylateral, parallel, strand)}
assert set(versions.values()) == {expected}, versions

done = []

@pylateral.task
def record(i):
    done.append(i)

with pylateral.task_pool(max_workers=4):
    for i in range(100):
        record(i)
assert sorted(done) == list(range(100)), done
assert parallel.map(abs, [-1, -2, 3]) == [1, 2, 3]
assert strand.ThreadTaskrunner(sum)([1, 2, 3]).result(30) == 6
print(f"check_dist.sh: the wheel's lateral {expected} runs a task of each package")
PY
)
echo "check_dist.sh: $(basename "${sdist[0]}") and $(basename "${wheel[0]}") are good"
