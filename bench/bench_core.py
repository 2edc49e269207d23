#!/usr/bin/env python3
"""Benchmark pylateral (on the ``_lateral`` core) against its peers.

One run measures this project's ``pylateral``, the standard library's
``concurrent.futures.ThreadPoolExecutor`` and the published ``pylateral``
1.0.0 from PyPI, and prints a table of figures, ratios, targets and PASS/MISS:

1. throughput of fire-and-forget no-op tasks;
2. makespan of 2,000 ``time.sleep(0.01)`` tasks on 100 workers, over the ideal;
3. memory per queued task with a large backlog;
4. submit-to-task-start latency on a warm, idle pool;
5. the cost of a short-lived pool: open, one task, close.

``--callgrind`` measures instead the instructions each fire-and-forget
no-op task costs the whole process (caller and workers), counted by
valgrind's callgrind: ours, ThreadPoolExecutor and, as the floor, a plain
call of the same function in the same loop.  The counts repeat whatever the
machine's load, within about 5% (where valgrind switches threads varies how
often a worker sleeps and wakes).  Each is the difference between a run of
2N tasks and one of N, divided by N, so interpreter start and imports
cancel out; the median of 3 such pairs is printed.

Every measurement runs in a fresh subprocess, so one library's heap and
threads never disturb another's figures, and so the published pylateral
(installed into ``bench/.cache/``) can be imported without shadowing ours.
A missed target is a finding, not a failure: the exit code is 0 unless a
measurement of this project or of ThreadPoolExecutor could not run at all.

Usage: ``python bench/bench_core.py [--quick] [--skip-published] [--json PATH]``
or ``python bench/bench_core.py --callgrind [--quick]``
"""
import argparse
import gc
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OUR_PYTHON_DIR = os.path.join(REPO, "python")
CACHE_DIR = os.path.join(HERE, ".cache")
PUBLISHED_VERSION = "1.0.0"
PUBLISHED_DIR = os.path.join(CACHE_DIR, "pylateral-" + PUBLISHED_VERSION)

OURS, TPE, PUBLISHED = "ours", "tpe", "published"
LIBS = (OURS, TPE, PUBLISHED)
LIB_TITLES = {OURS: "pylateral (ours)", TPE: "ThreadPoolExecutor",
              PUBLISHED: "pylateral " + PUBLISHED_VERSION}

THROUGHPUT = "throughput"
MAKESPAN = "makespan"
MEMORY = "memory per queued task"
LATENCY = "latency"
OPEN_CLOSE = "open, one task, close"
INSTRUCTIONS = "instructions per task"
PLAIN = "plain"  # a plain call of the task's function: the floor of --callgrind
INSTRUCTIONS_TARGET = 1000
CALLGRIND_REPEATS = 3  # the median: valgrind's thread switches move a count by ~5%
INSTRUCTION_COUNTS = {OURS: (20_000, 40_000), PLAIN: (20_000, 40_000), TPE: (2_000, 4_000)}

CHILD_TIMEOUT_S = 900
THROUGHPUT_WORKERS = 8
LATENCY_WORKERS = 8
MAKESPAN_WORKERS = 100
MAKESPAN_TASKS = 2000
MAKESPAN_SLEEP_S = 0.01
LATENCY_PAUSE_S = 0.001
LATENCY_WARMUP = 50
OPEN_CLOSE_WORKERS = 8
OPEN_CLOSE_WARMUP = 5

# (full, quick) sizes.  The slow peers get fewer tasks; rates are compared.
SIZES = {
    "repeats": (3, 1),
    "throughput_ours": (1_000_000, 100_000),
    "throughput_peer": (100_000, 20_000),
    "memory_ours": (1_000_000, 100_000),
    "memory_tpe": (1_000_000, 100_000),
    # pylateral 1.0.0 queues a Future, a partial and a log record per call:
    # a fifth of the count gives the same per-task figure in a fifth the time.
    "memory_published": (200_000, 20_000),
    "latency_samples": (2000, 200),
    "open_close_cycles": (300, 30),
}


# ---------------------------------------------------------------------------
# Child side: one measurement of one library, result printed as JSON.
# ---------------------------------------------------------------------------

def import_pylateral(lib, published_dir):
    """Import the pylateral under test and prove it is the intended one."""
    if lib == PUBLISHED:
        target = os.path.realpath(published_dir)
        # Drop every other directory holding a pylateral (our editable
        # install's python/ in particular) so ours cannot be imported here.
        sys.path[:] = [p for p in sys.path
                       if not os.path.isdir(os.path.join(p or ".", "pylateral"))]
        sys.path.insert(0, target)
        import pylateral
        if not os.path.realpath(pylateral.__file__).startswith(target + os.sep):
            raise RuntimeError(f"expected pylateral {PUBLISHED_VERSION} under "
                               f"{target}, imported {pylateral.__file__}")
        return pylateral
    sys.path.insert(0, OUR_PYTHON_DIR)
    import _lateral
    import pylateral
    if not isinstance(pylateral.task(lambda: None), _lateral.Task):
        raise RuntimeError(f"{pylateral.__file__} is not the _lateral-based pylateral")
    return pylateral


def rss_bytes():
    """Resident set size, read after a full collection so garbage is gone."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def noop(*_args):
    """The no-op task body."""


def phased_pylateral_run(pylateral, fn, count, workers):
    """Seconds to open the pool, to run the tasks (first call until join()
    returns) and to close it."""
    task = pylateral.task(fn)
    calls = itertools.repeat(None, count)
    t0 = time.perf_counter()
    with pylateral.task_pool(max_workers=workers):
        t1 = time.perf_counter()
        for _ in calls:
            task()
        pylateral.join()
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    return {"open": t1 - t0, "work": t2 - t1, "close": t3 - t2}


def phased_tpe_run(fn, count, workers):
    """As phased_pylateral_run, with submit + every result as the work."""
    from concurrent.futures import ThreadPoolExecutor
    calls = itertools.repeat(None, count)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as executor:
        t1 = time.perf_counter()
        futures = [executor.submit(fn) for _ in calls]
        for future in futures:
            future.result()
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    return {"open": t1 - t0, "work": t2 - t1, "close": t3 - t2}


def sleep_task():
    """A task that waits 10 ms without holding the GIL."""
    time.sleep(MAKESPAN_SLEEP_S)


def child_throughput(lib, pylateral, count):
    """Rate of no-op fire-and-forget tasks on 8 workers."""
    if lib == TPE:
        phases = phased_tpe_run(noop, count, THROUGHPUT_WORKERS)
    else:
        phases = phased_pylateral_run(pylateral, noop, count, THROUGHPUT_WORKERS)
    seconds = sum(phases.values())  # pool open to pool exit
    return {"count": count, "seconds": seconds, "rate": count / seconds}


def child_makespan(lib, pylateral, count):
    """Makespan of 2,000 sleeping tasks on 100 workers, over the ideal: from
    the first submission until every task has finished.  Opening and closing
    the pool are timed apart (both pools start their threads during the
    first submissions)."""
    if lib == TPE:
        phases = phased_tpe_run(sleep_task, MAKESPAN_TASKS, MAKESPAN_WORKERS)
    else:
        phases = phased_pylateral_run(pylateral, sleep_task, MAKESPAN_TASKS,
                                      MAKESPAN_WORKERS)
    ideal = MAKESPAN_TASKS * MAKESPAN_SLEEP_S / MAKESPAN_WORKERS
    whole = phases["open"] + phases["work"] + phases["close"]
    return {"count": MAKESPAN_TASKS, "seconds": phases["work"], "ideal": ideal,
            "ratio": phases["work"] / ideal, "whole_ratio": whole / ideal,
            "open_ms": phases["open"] * 1e3, "close_ms": phases["close"] * 1e3}


class Backlog:
    """One worker held by a blocking first task, so queued tasks stay queued."""

    def __init__(self):
        self.release = threading.Event()
        self.started = threading.Event()
        self.ran = 0

    def block(self):
        """Run first on the only worker: hold it until released."""
        self.started.set()
        self.release.wait()

    def count0(self):
        """A no-arg queued task; counts so the run can be checked."""
        self.ran += 1  # exact: a single worker runs these one by one

    def count1(self, _arg):
        """The one-argument queued task."""
        self.ran += 1

    def wait_blocked(self):
        """Wait until the worker is held, so the backlog stays queued."""
        if not self.started.wait(60):
            raise RuntimeError("the blocking first task never started")


def child_memory(lib, pylateral, count, with_arg):
    """Resident memory growth per queued task, behind one blocked worker."""
    backlog = Backlog()
    if lib == TPE:
        growth = queued_growth_tpe(backlog, count, with_arg)
    else:
        growth = queued_growth_pylateral(pylateral, backlog, count, with_arg)
    if backlog.ran != count:
        raise RuntimeError(f"{count} tasks queued but {backlog.ran} ran")
    return {"count": count, "growth": growth, "per_task": growth / count}


def queued_growth_pylateral(pylateral, backlog, count, with_arg):
    """RSS growth while ``count`` task calls wait behind the blocker."""
    block = pylateral.task(backlog.block)
    task = pylateral.task(backlog.count1 if with_arg else backlog.count0)
    calls = itertools.repeat(None, count)
    with pylateral.task_pool(max_workers=1):
        block()
        backlog.wait_blocked()
        before = rss_bytes()
        if with_arg:
            for _ in calls:
                task(1)
        else:
            for _ in calls:
                task()
        growth = rss_bytes() - before
        backlog.release.set()
    return growth


def queued_growth_tpe(backlog, count, with_arg):
    """RSS growth while ``count`` submitted futures wait behind the blocker."""
    from concurrent.futures import ThreadPoolExecutor
    calls = itertools.repeat(None, count)
    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(backlog.block)
        backlog.wait_blocked()
        before = rss_bytes()
        if with_arg:
            futures = [executor.submit(backlog.count1, 1) for _ in calls]
        else:
            futures = [executor.submit(backlog.count0) for _ in calls]
        growth = rss_bytes() - before
        backlog.release.set()
        for future in futures:
            future.result()
    return growth


def child_latency(lib, pylateral, samples):
    """Median, p90 and p99 of submit-to-start latency on a warm, idle pool."""
    starts = [0.0] * (samples + LATENCY_WARMUP)
    started = threading.Event()

    def probe(i):
        starts[i] = time.perf_counter()
        started.set()

    if lib == TPE:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=LATENCY_WORKERS) as executor:
            latencies = sample_latencies(lambda i: executor.submit(probe, i),
                                         starts, started)
    else:
        task = pylateral.task(probe)
        with pylateral.task_pool(max_workers=LATENCY_WORKERS):
            latencies = sample_latencies(task, starts, started)
    latencies = latencies[LATENCY_WARMUP:]
    return {"count": len(latencies), "median_us": 1e6 * statistics.median(latencies),
            "p90_us": 1e6 * percentile(latencies, 0.9),
            "p99_us": 1e6 * percentile(latencies, 0.99)}


def sample_latencies(submit, starts, started):
    """Submit one probe at a time to an idle pool; latency = its start - t0."""
    latencies = []
    for i in range(len(starts)):
        started.clear()
        t0 = time.perf_counter()
        submit(i)
        if not started.wait(30):
            raise RuntimeError(f"probe {i} did not start within 30 s")
        latencies.append(starts[i] - t0)
        time.sleep(LATENCY_PAUSE_S)  # let the pool go idle again
    return latencies


def child_open_close(lib, pylateral, cycles):
    """Median time of a short-lived pool of 8 workers: open it, run one
    no-op task in it, close it (waiting for its threads)."""
    if lib == TPE:
        from concurrent.futures import ThreadPoolExecutor

        def cycle():
            with ThreadPoolExecutor(max_workers=OPEN_CLOSE_WORKERS) as executor:
                executor.submit(noop)
    else:
        task = pylateral.task(noop)

        def cycle():
            with pylateral.task_pool(max_workers=OPEN_CLOSE_WORKERS):
                task()
    seconds = []
    for _ in range(cycles + OPEN_CLOSE_WARMUP):
        t0 = time.perf_counter()
        cycle()
        seconds.append(time.perf_counter() - t0)
    seconds = seconds[OPEN_CLOSE_WARMUP:]
    return {"count": cycles, "median_us": 1e6 * statistics.median(seconds),
            "p90_us": 1e6 * percentile(seconds, 0.9)}


def percentile(values, fraction):
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def child_instructions(lib, pylateral, count):
    """``count`` no-op tasks (or plain calls), for callgrind to count."""
    if lib == PLAIN:
        for _ in itertools.repeat(None, count):
            noop()
    elif lib == TPE:
        phased_tpe_run(noop, count, THROUGHPUT_WORKERS)
    else:
        phased_pylateral_run(pylateral, noop, count, THROUGHPUT_WORKERS)
    return {"count": count}


def run_child(spec):
    """Entry point of a measuring subprocess; prints one JSON line."""
    lib = spec["lib"]
    pylateral = None if lib in (TPE, PLAIN) else import_pylateral(lib,
                                                                  spec.get("published_dir"))
    kind, count = spec["kind"], spec.get("count")
    if kind == THROUGHPUT:
        result = child_throughput(lib, pylateral, count)
    elif kind == MAKESPAN:
        result = child_makespan(lib, pylateral, count)
    elif kind == MEMORY:
        result = child_memory(lib, pylateral, count, spec["with_arg"])
    elif kind == LATENCY:
        result = child_latency(lib, pylateral, count)
    elif kind == OPEN_CLOSE:
        result = child_open_close(lib, pylateral, count)
    elif kind == INSTRUCTIONS:
        result = child_instructions(lib, pylateral, count)
    else:
        raise ValueError(f"unknown measurement kind {kind!r}")
    if pylateral is not None:
        result["module"] = os.path.dirname(pylateral.__file__)
    print(json.dumps(result))


# ---------------------------------------------------------------------------
# Parent side: install the published pylateral, run children, print table.
# ---------------------------------------------------------------------------

def ensure_published():
    """Directory holding pylateral 1.0.0 (installed once into the cache), or
    None with the reason printed when pip cannot fetch it."""
    if os.path.isfile(os.path.join(PUBLISHED_DIR, "pylateral", "__init__.py")):
        return PUBLISHED_DIR
    os.makedirs(CACHE_DIR, exist_ok=True)
    staging = tempfile.mkdtemp(prefix="install-", dir=CACHE_DIR)
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
           "--disable-pip-version-check", "--target", staging,
           f"pylateral=={PUBLISHED_VERSION}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        proc, reason = None, str(exc)
    if proc is not None and proc.returncode == 0:
        shutil.rmtree(PUBLISHED_DIR, ignore_errors=True)
        os.replace(staging, PUBLISHED_DIR)  # atomic: no half-installed cache
        return PUBLISHED_DIR
    shutil.rmtree(staging, ignore_errors=True)
    if proc is not None:
        reason = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
    print(f"pylateral {PUBLISHED_VERSION}: unavailable ({reason})")
    return None


def measure(spec, published_dir):
    """Run one child; its result dict, or {'error': text}."""
    try:
        proc = run_measuring_child(dict(spec, published_dir=published_dir))
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT_S} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {stderr_tail(proc)}"}
    return json.loads(lines[-1])


def run_measuring_child(spec, wrapper=(), env=None):
    """This script's child for ``spec``, run to its end (under ``wrapper``,
    a command prefix such as valgrind's, and with ``env`` if given)."""
    cmd = [*wrapper, sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)]
    return subprocess.run(cmd, capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT_S, cwd=REPO, env=env)


def stderr_tail(proc):
    """A finished child's last line of stderr: what to report of a failure."""
    return (proc.stderr.strip().splitlines() or ["no output"])[-1]


def count_instructions(lib, count):
    """Instructions callgrind counts for a child running ``count`` tasks."""
    with tempfile.TemporaryDirectory() as scratch:
        proc = run_measuring_child(
            {"kind": INSTRUCTIONS, "lib": lib, "count": count},
            wrapper=("valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/out"),
            # One string hash seed for both counts: with a random one, the
            # dict probes of start-up differ from run to run by ~300,000
            # instructions, which the difference of two counts took for
            # ~15 per task.
            env=dict(os.environ, PYTHONHASHSEED="0"))
    collected = [line for line in proc.stderr.splitlines() if "Collected :" in line]
    if proc.returncode != 0 or not collected:
        raise RuntimeError(f"callgrind run of {lib} failed: {stderr_tail(proc)}")
    return int(collected[-1].split(":")[-1].replace(",", ""))


def run_callgrind(quick):
    """Print instructions per task of each library and the floor; 0, or 1
    when valgrind is missing or a run failed."""
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    per_task = {}
    for lib, (small, large) in INSTRUCTION_COUNTS.items():
        if quick:
            small, large = small // 10, large // 10
        print(f"  callgrind: {LIB_TITLES.get(lib, lib)}, {small:,} and {large:,} tasks",
              file=sys.stderr, flush=True)
        try:
            per_task[lib] = statistics.median(
                (count_instructions(lib, large) - count_instructions(lib, small))
                / (large - small) for _ in range(1 if quick else CALLGRIND_REPEATS))
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    ours, floor, tpe = per_task[OURS], per_task[PLAIN], per_task[TPE]
    verdict = "PASS" if ours <= INSTRUCTIONS_TARGET else "MISS"
    print(f"python {platform.python_version()}: instructions per fire-and-forget no-op task")
    print(f"  pylateral (ours)        {ours:9,.0f}  target <= {INSTRUCTIONS_TARGET:,}  {verdict}")
    print(f"  ThreadPoolExecutor      {tpe:9,.0f}  (ours / it: {ours / tpe:.3f}x)")
    print(f"  plain call (the floor)  {floor:9,.0f}  (ours above it: {ours - floor:,.0f})")
    return 0


def plan(sizes):
    """(key, spec, how runs are combined, figure) for every measurement."""
    peer = sizes["throughput_peer"]
    for lib in LIBS:
        count = sizes["throughput_ours"] if lib == OURS else peer
        yield (THROUGHPUT, lib), {"kind": THROUGHPUT, "lib": lib, "count": count}, max, "rate"
    for lib in LIBS:
        yield (MAKESPAN, lib), {"kind": MAKESPAN, "lib": lib}, min, "ratio"
    for with_arg in (False, True):
        for lib in LIBS:
            spec = {"kind": MEMORY, "lib": lib, "count": sizes["memory_" + lib],
                    "with_arg": with_arg}
            yield (MEMORY, lib, with_arg), spec, statistics.median, "per_task"
    for lib in LIBS:
        spec = {"kind": LATENCY, "lib": lib, "count": sizes["latency_samples"]}
        yield (LATENCY, lib), spec, min, "median_us"
    for lib in LIBS:
        spec = {"kind": OPEN_CLOSE, "lib": lib, "count": sizes["open_close_cycles"]}
        yield (OPEN_CLOSE, lib), spec, min, "median_us"


def run_all(sizes, published_dir):
    """Every measurement, repeats interleaved across libraries so that a
    change in the machine's load hits all of them alike."""
    runs = {}
    steps = [step for step in plan(sizes)
             if published_dir is not None or step[1]["lib"] != PUBLISHED]
    for repeat in range(sizes["repeats"]):
        for key, spec, _, _ in steps:
            print(f"  run {repeat + 1}/{sizes['repeats']}: {key_title(key)}",
                  file=sys.stderr, flush=True)
            runs.setdefault(key, []).append(measure(spec, published_dir))
    return {key: summarize(runs[key], combine, figure)
            for key, _, combine, figure in steps}


def key_title(key):
    """Human-readable name of a measurement key, for progress and details."""
    extra = "" if len(key) < 3 else (", one int arg" if key[2] else ", no args")
    return f"{key[0]}{extra} / {LIB_TITLES[key[1]]}"


def summarize(results, combine, figure):
    """Combine the good runs: best for timings (load only ever adds time),
    median for memory.  The chosen run's details ride along."""
    good = [r for r in results if "error" not in r]
    if not good:
        return {"error": results[-1]["error"], "runs": results}
    value = combine([r[figure] for r in good])
    chosen = min(good, key=lambda r: abs(r[figure] - value))
    return dict(chosen, value=value, runs=results)


# --- table -----------------------------------------------------------------

class Row:
    """One line of the table: figures per library, target and verdict."""

    def __init__(self, title, cells, target_text="", passed=None):
        self.title, self.cells = title, cells
        self.target_text, self.passed = target_text, passed

    def verdict(self):
        """PASS, MISS, or '-' for a row without a target."""
        return {True: "PASS", False: "MISS", None: "-"}[self.passed]


def value_of(figures, key):
    """The combined figure of ``key``, or None if missing or failed."""
    entry = figures.get(key)
    return None if entry is None or "error" in entry else entry["value"]


def cell(figures, key, fmt):
    """Table text for ``key``: formatted figure, 'error' or 'unavailable'."""
    entry = figures.get(key)
    if entry is None:
        return "unavailable"
    if "error" in entry:
        return "error"
    return fmt(entry["value"])


def check(value, op, target):
    """Whether ``value`` meets the target (a missing value does not)."""
    if value is None:
        return False
    return value >= target if op == ">=" else value <= target


def ratio(a, b):
    """a / b, or None when either is missing."""
    return None if a is None or b is None or b == 0 else a / b


def build_rows(figures):
    """Every table row, in measurement order."""
    return (throughput_rows(figures) + makespan_rows(figures)
            + memory_rows(figures) + latency_rows(figures) + open_close_rows(figures))


def throughput_rows(figures):
    """Rows of measurement 1: rates, then ours over each peer."""
    rate = lambda v: f"{v:,.0f}"
    ours = value_of(figures, (THROUGHPUT, OURS))
    rows = [Row("1 throughput, no-op @task, 8 workers (tasks/s)",
                [cell(figures, (THROUGHPUT, lib), rate) for lib in LIBS],
                ">= 1,000,000", check(ours, ">=", 1_000_000))]
    for lib, target in ((TPE, 20), (PUBLISHED, 40)):
        title = f"  throughput, ours / {LIB_TITLES[lib]}"
        if (THROUGHPUT, lib) not in figures:
            rows.append(Row(title, ["unavailable", "", ""], f">= {target}x"))
            continue
        r = ratio(ours, value_of(figures, (THROUGHPUT, lib)))
        text = "error" if r is None else f"{r:.1f}x"
        rows.append(Row(title, [text, "", ""], f">= {target}x", check(r, ">=", target)))
    return rows


def makespan_rows(figures):
    """Row of measurement 2."""
    fmt = lambda v: f"{v:.3f}"
    ours = value_of(figures, (MAKESPAN, OURS))
    ms = lambda v: f"{v:.1f}"
    return [Row("2 makespan, 2,000 x sleep(10 ms), 100 workers (/ 0.2 s ideal)",
                [cell(figures, (MAKESPAN, lib), fmt) for lib in LIBS],
                "<= 1.05", check(ours, "<=", 1.05)),
            Row("  same, counting pool open + close (/ 0.2 s)",
                detail_cells(figures, MAKESPAN, "whole_ratio", fmt), "(report)"),
            Row("  pool open (ms)", detail_cells(figures, MAKESPAN, "open_ms", ms), "(report)"),
            Row("  pool close (ms)", detail_cells(figures, MAKESPAN, "close_ms", ms), "(report)")]


def memory_rows(figures):
    """Rows of measurement 3: without and with one int argument."""
    fmt = lambda v: f"{v:,.0f}"
    ours = value_of(figures, (MEMORY, OURS, False))
    return [Row("3 memory per queued task, no args (bytes)",
                [cell(figures, (MEMORY, lib, False), fmt) for lib in LIBS],
                "<= 200", check(ours, "<=", 200)),
            Row("  memory per queued task, one int arg (bytes)",
                [cell(figures, (MEMORY, lib, True), fmt) for lib in LIBS],
                "(report)")]


def run_figure(figures, key, name):
    """Figure ``name`` of the run chosen for ``key``, or None."""
    entry = figures.get(key)
    return None if entry is None or "error" in entry else entry.get(name)


def detail_cells(figures, kind, name, fmt):
    """Cells of figure ``name`` of the chosen run of each library."""
    def text(lib):
        if (kind, lib) not in figures:
            return "unavailable"
        value = run_figure(figures, (kind, lib), name)
        return "error" if value is None else fmt(value)
    return [text(lib) for lib in LIBS]


def paired_ratio(figures, kind, name):
    """Median over the repeats of ours / ThreadPoolExecutor for figure
    ``name``, each repeat's two runs taken close together in time (the
    libraries are interleaved), so a change of load hits both; None if no
    repeat has both."""
    ours, tpe = figures.get((kind, OURS)), figures.get((kind, TPE))
    if ours is None or tpe is None:
        return None
    ratios = [a[name] / b[name] for a, b in zip(ours["runs"], tpe["runs"])
              if "error" not in a and "error" not in b and b[name] > 0]
    return statistics.median(ratios) if ratios else None


def ratio_row(title, r, target):
    """A row of ours / ThreadPoolExecutor against an at-most target."""
    return Row(title, ["error" if r is None else f"{r:.2f}x", "", ""],
               f"<= {target}x", check(r, "<=", target))


def latency_rows(figures):
    """Rows of measurement 4: median and p99 (each with targets, and over
    ThreadPoolExecutor's in the same run), p90."""
    fmt = lambda v: f"{v:.1f}"
    ours = value_of(figures, (LATENCY, OURS))
    ours_p99 = run_figure(figures, (LATENCY, OURS), "p99_us")
    return [Row("4 latency, submit to task start, idle pool: median (us)",
                [cell(figures, (LATENCY, lib), fmt) for lib in LIBS],
                "<= 15", check(ours, "<=", 15)),
            ratio_row("  latency median, ours / ThreadPoolExecutor",
                      paired_ratio(figures, LATENCY, "median_us"), 0.5),
            Row("  latency p99 (us)", detail_cells(figures, LATENCY, "p99_us", fmt),
                "<= 60", check(ours_p99, "<=", 60)),
            ratio_row("  latency p99, ours / ThreadPoolExecutor",
                      paired_ratio(figures, LATENCY, "p99_us"), 0.5),
            Row("  latency p90 (us)", detail_cells(figures, LATENCY, "p90_us", fmt),
                "(report)")]


def open_close_rows(figures):
    """Rows of measurement 5: median time of one short-lived pool."""
    fmt = lambda v: f"{v:.0f}"
    return [Row("5 open, one no-op task, close, 8 workers: median (us)",
                [cell(figures, (OPEN_CLOSE, lib), fmt) for lib in LIBS], "(report)"),
            ratio_row("  open, one task, close, ours / ThreadPoolExecutor",
                      paired_ratio(figures, OPEN_CLOSE, "median_us"), 1.0)]


TABLE_HEADER = ("measurement", LIB_TITLES[OURS], LIB_TITLES[TPE],
                LIB_TITLES[PUBLISHED], "target", "result")


def print_table(rows):
    """Print the rows as aligned columns under TABLE_HEADER."""
    widths = [max(len(TABLE_HEADER[0]), *(len(r.title) for r in rows))]
    for i in range(3):
        widths.append(max(len(TABLE_HEADER[i + 1]), *(len(r.cells[i]) for r in rows)))
    widths.append(max(len(TABLE_HEADER[4]), *(len(r.target_text) for r in rows)))
    line = lambda cols: "  ".join(
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cols, widths))
    ) + "  " + cols[-1]
    print(line(TABLE_HEADER))
    print("-" * (sum(widths) + 2 * len(widths) + len("result")))
    for r in rows:
        print(line([r.title, *r.cells, r.target_text, r.verdict()]))


def print_details(figures):
    """Counts and all runs, so a reader can judge the spread."""
    print("\nruns (figure per run; * = combined value used above):")
    for key, entry in figures.items():
        runs = ", ".join(r["error"] if "error" in r else f"{r[figure_name(key)]:.4g}"
                         for r in entry["runs"])
        count = entry.get("count")
        unit = {LATENCY: "samples", OPEN_CLOSE: "cycles"}.get(key[0], "tasks")
        suffix = f" [{count:,} {unit}]" if count else ""
        shown = "error" if "error" in entry else f"{entry['value']:.4g}*"
        print(f"  {key_title(key)}{suffix}: {shown}  runs: {runs}")


def print_modules(figures):
    """Where each pylateral was imported from, as its child reported."""
    for lib in (OURS, PUBLISHED):
        entry = figures.get((THROUGHPUT, lib), {})
        if "module" in entry:
            print(f"{LIB_TITLES[lib]} imported from {entry['module']}")


def figure_name(key):
    """Name of the per-run figure that measurement ``key`` combines."""
    return {THROUGHPUT: "rate", MAKESPAN: "ratio", MEMORY: "per_task",
            LATENCY: "median_us", OPEN_CLOSE: "median_us"}[key[0]]


def print_environment(label):
    """Print the load average, labelled (start or end of the run)."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{label}: load average {load}")


def parse_args(argv):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller counts and one run each (smoke test)")
    parser.add_argument("--skip-published", action="store_true",
                        help=f"do not install or measure pylateral {PUBLISHED_VERSION}")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    parser.add_argument("--callgrind", action="store_true",
                        help="count instructions per task with valgrind instead of timing")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def write_json(path, figures, rows, quick, load_start):
    """Write the environment, every figure with its runs, and the rows."""
    data = {
        "python": sys.version, "cpu_count": os.cpu_count(), "quick": quick,
        "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
        "figures": [{"measurement": k[0], "library": LIB_TITLES[k[1]],
                     "with_arg": k[2] if len(k) > 2 else None, **v}
                    for k, v in figures.items()],
        "rows": [{"measurement": r.title.strip(), "cells": dict(zip(LIBS, r.cells)),
                  "target": r.target_text, "result": r.verdict()} for r in rows],
    }
    with open(path, "w") as out:
        json.dump(data, out, indent=2)


def main(argv=None):
    """Run the benchmark (or, with --child, one measurement)."""
    args = parse_args(argv)
    if args.child:
        run_child(json.loads(args.child))
        return 0
    if args.callgrind:
        return run_callgrind(args.quick)
    sizes = {name: pair[1 if args.quick else 0] for name, pair in SIZES.items()}
    load_start = os.getloadavg()
    print(f"python {platform.python_version()} ({sys.executable}), "
          f"{os.cpu_count()} CPUs, {platform.machine()}")
    print_environment("start")
    if args.skip_published:
        print(f"pylateral {PUBLISHED_VERSION}: skipped (--skip-published)")
        published_dir = None
    else:
        published_dir = ensure_published()
    figures = run_all(sizes, published_dir)
    rows = build_rows(figures)
    print()
    print_table(rows)
    print_details(figures)
    print_modules(figures)
    print_environment("end")
    if args.json:
        write_json(args.json, figures, rows, args.quick, load_start)
    broken = [k for k, v in figures.items() if "error" in v and k[1] != PUBLISHED]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
