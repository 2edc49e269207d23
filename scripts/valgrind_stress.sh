#!/usr/bin/env bash
# Run the stress tests (or the given pytest arguments) and a short soak
# (bench/soak.py) under valgrind memcheck, with _lateral built normally (plus
# -g) in a scratch copy of the repository; the repo's own build is never
# touched.  Prints a summary and exits non-zero on any memcheck error, on any
# definite leak with a _lateral frame in its allocation stack, or if pytest or
# the soak failed.  Definite leaks elsewhere (CPython's own at-exit noise,
# other extensions) are reported but do not fail the run.
#
#   scripts/valgrind_stress.sh                       # the default targets
#   scripts/valgrind_stress.sh tests/test_pylateral_api.py -k join
#
# Environment:
#   LATERAL_VALGRIND_PYTHON   interpreter to test (default python3).  If
#                             memcheck already reports uninitialised values
#                             for `python -c pass` (CPython 3.11 built with
#                             -O3 does: maybe_small_long() multiplies an
#                             unset digit by 0, which taints the small int 0
#                             and every later use of it), those checks are
#                             turned off and the summary says so.  3.12 and
#                             3.13 keep them, but leak far more at exit
#                             (immortal interned strings): that noise is
#                             reported as "outside _lateral", not judged.
#   LATERAL_STRESS_SCALE      iteration scale of the stress tests (0.01)
#   LATERAL_VALGRIND_SOAK_MINUTES  soak length (0.2; 0 skips the soak)
#   LATERAL_VALGRIND_TIMEOUT  pytest-timeout default per test, seconds (1800)
#   LATERAL_VALGRIND_KEEP=1   keep the scratch copy and logs (kept on failure)
#   LATERAL_VALGRIND_SELFTEST=leak|uaf|both  plant a deliberate bug in the
#                             scratch copy (a leaked malloc / a read after
#                             free in lat_timeout_seconds, which every wait
#                             calls): the run must then fail.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/lateral-valgrind.XXXXXX)"
logs="$work/logs"
keep="${LATERAL_VALGRIND_KEEP:-0}"
finish() {
    local status=$?
    if [[ "$keep" == 1 || $status -ne 0 ]]; then
        echo "valgrind logs and scratch copy kept in $work" >&2
    else
        rm -rf "$work"
    fi
}
trap finish EXIT
started=$SECONDS

command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }
default_targets=(tests/test_reliability_leaks.py tests/test_reliability_properties.py
                 tests/test_reliability_contention.py)
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=()
    for t in "${default_targets[@]}"; do
        if [[ -e "$repo/$t" ]]; then targets+=("$t"); else echo "note: $t does not exist, skipped" >&2; fi
    done
    [[ ${#targets[@]} -gt 0 ]] || targets=(tests/test_pylateral_api.py tests/test_parallel_api.py)
fi
soak_minutes="${LATERAL_VALGRIND_SOAK_MINUTES:-0.2}"

# --- a scratch copy (tracked and untracked files, no build products) -------
git -C "$repo" ls-files -z | (cd "$repo" && xargs -0 cp --parents -t "$work")
(cd "$repo" && git ls-files -z --others --exclude-standard) | (cd "$repo" && xargs -0 -r cp --parents -t "$work")
cd "$work"
rm -rf build python/_lateral*.so
mkdir -p "$logs"

plant_bug() {  # the self-test: a deliberate bug the run must catch
    python3 - "$1" <<'EOF'
import sys
path, kind = "src/_lateral/wait.c", sys.argv[1]
anchor = "int lat_timeout_seconds(PyObject *obj, double *out)\n{\n"
bugs = {
    "leak": "    { static void *volatile selftest_block; selftest_block = malloc(40); (void)selftest_block; }\n",
    "uaf": ("    { char *volatile p = malloc(16);\n"
            "      if (p) { p[0] = 1; free(p); volatile char c = p[0]; (void)c; } }\n"),
}
chosen = ["leak", "uaf"] if kind == "both" else [kind]
if any(k not in bugs for k in chosen):
    sys.exit(f"LATERAL_VALGRIND_SELFTEST must be leak, uaf or both, got {kind!r}")
source = open(path).read()
if source.count(anchor) != 1:
    sys.exit(f"self-test anchor not found in {path}: update scripts/valgrind_stress.sh")
open(path, "w").write(source.replace(anchor, anchor + "".join(bugs[k] for k in chosen)))
print(f"self-test: planted {' and '.join(chosen)} in lat_timeout_seconds ({path})")
EOF
}
[[ -n "${LATERAL_VALGRIND_SELFTEST:-}" ]] && plant_bug "$LATERAL_VALGRIND_SELFTEST"

# --- build in a venv of the interpreter under test --------------------------
# pyproject.toml needs setuptools >= 77; the interpreter's own may be older.
python="$("${LATERAL_VALGRIND_PYTHON:-python3}" -c 'import sys; print(sys.executable)')"
"$python" -m venv --system-site-packages "$work/.venv"
py="$work/.venv/bin/python"
"$py" -m pip install -q --disable-pip-version-check 'setuptools>=77' >/dev/null
missing="$("$py" -c '
import importlib.util as u
print(" ".join(p for m, p in [("pytest", "pytest>=7"), ("pytest_timeout", "pytest-timeout>=2"),
                              ("hypothesis", "hypothesis>=6"), ("cloudpickle", "cloudpickle>=2.0"),
                              ("dill", "dill>=0.3.6")] if not u.find_spec(m)))')"
# shellcheck disable=SC2086
[[ -z "$missing" ]] || "$py" -m pip install -q --disable-pip-version-check $missing >/dev/null
CFLAGS="${CFLAGS:-} -g -fno-omit-frame-pointer" "$py" setup.py -q build_ext --inplace --force >/dev/null

# Hypothesis: no deadline and no too-slow health check under a 50x slowdown.
cat > "$work/valgrind_pytest_plugin.py" <<'EOF'
"""Loaded with -p by scripts/valgrind_stress.sh: memcheck makes everything slow."""
try:
    from hypothesis import HealthCheck, settings
except ImportError:
    pass
else:
    settings.register_profile("valgrind", deadline=None,
                              suppress_health_check=list(HealthCheck))
    settings.load_profile("valgrind")
EOF
# Runs a module (-m) or a script and writes its exit status to a file, since
# valgrind's --error-exitcode replaces the exit status when it reports errors.
cat > "$work/record_status.py" <<'EOF'
import os, runpy, sys
status_file, main_pid, status = sys.argv[1], os.getpid(), 1
try:
    if sys.argv[2] == "-m":
        sys.argv = sys.argv[3:]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        sys.argv = sys.argv[2:]
        runpy.run_path(sys.argv[0], run_name="__main__")
    status = 0
except SystemExit as exc:
    code = exc.code
    status = 0 if code is None else code if isinstance(code, int) else 1
finally:
    if os.getpid() == main_pid:  # a forked child unwinding here must not write
        with open(status_file, "w") as f:
            f.write(str(status))
sys.exit(status)
EOF

export PYTHONMALLOC=malloc          # CPython's arenas would hide heap errors
export LATERAL_SANITIZED=1          # resident-memory ratios mean nothing here
export LATERAL_STRESS_SCALE="${LATERAL_STRESS_SCALE:-0.01}"
export PYTHONPATH="$work/python:$work${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
"$py" -c "
import sys, _lateral, pylateral, parallel, strand
for m in (_lateral, pylateral, parallel, strand):
    assert m.__file__.startswith('$work/'), m.__file__
print('testing', _lateral.__file__, 'on Python', sys.version.split()[0])"

# Text logs, one per process: valgrind reopens a %p log file in a forked
# child (multiprocessing's workers), while an XML file would be shared.
vg_opts=(--tool=memcheck --error-exitcode=99 --leak-check=full --show-leak-kinds=definite
         --errors-for-leak-kinds=definite --num-callers=40 --fair-sched=yes
         --fullpath-after= --child-silent-after-fork=no --trace-children=no
         --gen-suppressions=all --suppressions="$repo/scripts/valgrind-python.supp")

run_vg() {  # run_vg NAME ARGS...: one program under memcheck, a log per process
    local name=$1; shift
    local t0=$SECONDS rc=0
    echo "=== $name: $*" >&2
    valgrind "${vg_opts[@]}" --log-file="$logs/$name.%p.log" \
        "$py" "$work/record_status.py" "$logs/$name.status" "$@" || rc=$?
    echo "$rc" > "$logs/$name.vgrc"
    echo "$((SECONDS - t0))" > "$logs/$name.seconds"
    echo "=== $name: exit $rc after $((SECONDS - t0)) s" >&2
}

# An interpreter that memcheck already finds errors in would drown the
# report: keep the uninitialised-value checks only if `pass` is clean.
undef_checks=on
valgrind "${vg_opts[@]}" --log-file="$logs/preflight.log" "$py" -c pass || true
if grep -qE "uninitialised value|depends on uninitialised" "$logs/preflight.log"; then
    undef_checks="OFF ($python: memcheck reports uninitialised values for 'python -c pass')"
    vg_opts+=(--undef-value-errors=no)
fi
rm -f "$logs/preflight.log"

run_vg pytest -m pytest -p no:cacheprovider -p valgrind_pytest_plugin -q \
    --timeout="${LATERAL_VALGRIND_TIMEOUT:-1800}" "${targets[@]}"
if [[ "$soak_minutes" != 0 ]]; then
    run_vg soak bench/soak.py --minutes "$soak_minutes" --report-every 6
fi

# --- summary -----------------------------------------------------------------
"$py" - "$logs" "$undef_checks" "$((SECONDS - started))" <<'EOF'
import glob, os, re, sys

logs, undef_checks, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
ERROR_EXIT = 99
SHOWN = 5
PREFIX = re.compile(r"^==\d+== ?(.*)$")
LEAK = re.compile(r"^([\d,]+) (?:\(([\d,]+) direct, [\d,]+ indirect\) )?bytes in ([\d,]+) "
                  r"blocks are definitely lost")
FRAME = re.compile(r"^\s+(?:at|by) 0x")

def records(path):
    """The blocks of a log that carry a stack: (headline, stack lines)."""
    block = []
    for line in open(path, errors="replace"):
        match = PREFIX.match(line.rstrip("\n"))
        if not match:
            continue  # --gen-suppressions output
        text = match.group(1)
        if text.strip():
            block.append(text)
            continue
        block = [b for b in block if not re.match(r"^Thread \d+:", b)]
        if len(block) > 1 and FRAME.match(block[1]):
            yield block[0], block[1:]
        block = []

def is_lateral(stack):
    # the .so (in /.../_lateral.cpython-...so) or a source file under src/_lateral/
    return any(FRAME.match(f) and "_lateral" in f for f in stack)

def parse(path):
    """(memcheck errors, leaks with a _lateral frame, other definite leaks)."""
    errors, ours, others = [], [], []
    for headline, stack in records(path):
        leak = LEAK.match(headline)
        if leak is None:
            errors.append((headline, stack))
            continue
        size = int((leak.group(2) or leak.group(1)).replace(",", ""))  # direct bytes
        blocks = int(leak.group(3).replace(",", ""))
        (ours if is_lateral(stack) else others).append((size, blocks, headline, stack))
    return errors, ours, others

def describe(headline, stack, pid):
    frames = [f.strip() for f in stack if FRAME.match(f)]
    shown = frames[:12]
    ours = [f for f in frames if "_lateral" in f]
    if ours and ours[0] not in shown:
        shown += ["...", ours[0]]
    return "\n".join([f"{headline}  [pid {pid}]"] + ["    " + f for f in shown])

def parent_pid(path):
    for line in open(path, errors="replace"):
        if "Parent PID:" in line:
            return line.rsplit(":", 1)[1].strip()
    return None

failures, rows, details = [], [], []
for name in ("pytest", "soak"):
    paths = sorted(glob.glob(os.path.join(logs, f"{name}.*.log")))
    if not paths:
        continue
    status_path = os.path.join(logs, f"{name}.status")
    status = open(status_path).read().strip() if os.path.exists(status_path) else "none"
    vgrc = int(open(os.path.join(logs, f"{name}.vgrc")).read())
    secs = open(os.path.join(logs, f"{name}.seconds")).read().strip()
    pids = {path.rsplit(".", 2)[-2]: path for path in paths}
    errors, ours, others, forked = [], [], [], []
    for pid, path in pids.items():
        e, o, x = parse(path)
        errors += [(h, s, pid) for h, s in e]
        leaks = [(b, k, h, s, pid) for b, k, h, s in o]
        if parent_pid(path) in pids:
            # A forked child (a multiprocessing worker, a fork test) exits with
            # the memory of the parent's threads unreferenced: its leak check
            # is reported, not judged.  Its memcheck errors count.
            forked += leaks + [(b, k, h, s, pid) for b, k, h, s in x]
        else:
            ours += leaks
            others += [(b, k, h, s, pid) for b, k, h, s in x]
    our_bytes, our_blocks = sum(r[0] for r in ours), sum(r[1] for r in ours)
    rows.append(f"  {name}: exit status {status}, {secs} s, {len(paths)} process(es)\n"
                f"    memcheck errors {len(errors)}; definitely lost in _lateral "
                f"{our_bytes:,} B in {our_blocks} blocks\n"
                f"    not judged: definitely lost outside _lateral {sum(r[0] for r in others):,} B "
                f"({len(others)} records), in forked children {sum(r[0] for r in forked):,} B "
                f"({len(forked)} records)")
    if status != "0":
        failures.append(f"{name} exited with status {status}")
    if errors:
        failures.append(f"{name}: {len(errors)} memcheck errors")
    if ours:
        failures.append(f"{name}: {our_bytes:,} bytes definitely lost in _lateral")
    if vgrc == ERROR_EXIT and not (errors or ours or others or forked):
        failures.append(f"{name}: valgrind reported errors that the summary could not read")
    details += [f"[{name}] memcheck error: " + describe(h, s, p) for h, s, p in errors[:SHOWN]]
    details += [f"[{name}] leak in _lateral: " + describe(h, s, p) for _, _, h, s, p in ours[:SHOWN]]

print("\nvalgrind memcheck summary")
print(f"  uninitialised-value checks: {undef_checks}")
print("\n".join(rows))
for detail in details:
    print("  " + detail.replace("\n", "\n  "))
print(f"  total time {seconds // 60} min {seconds % 60} s")
print("  RESULT: " + ("FAILED: " + "; ".join(failures) if failures else "OK"))
sys.exit(1 if failures else 0)
EOF
