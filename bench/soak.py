#!/usr/bin/env python3
"""Soak test: a mixed load of the three packages for a given number of minutes.

    python bench/soak.py --minutes M [--report-every SECONDS]

Three driver threads run at the same time, in one process, each cycling
through its steps until the time is up:

- pylateral: bursts of fire-and-forget tasks (plain, nested, with return
  values, task groups inside tasks), bursts whose tasks raise (the error is
  raised in the driver and collected in ``pool.errors``; the pool is re-armed
  and used again), and open/close cycles of bare ``_lateral.Pool``s;
- parallel: ``parallel.map`` (list and dict) and ``parallel.par`` on threads,
  ``map(..., silent=True)`` with failing items, and every few seconds a small
  ``parallel.process.map`` (silent, with failures too);
- strand: ``ThreadTaskrunner`` calls (with ``on_end`` and failing calls),
  and ``StoreTaskWriter`` tasks run by ``StoreTaskReader``s on a dict
  (``MappingTaskQueue``) and on an SQLite store.

Every result is checked against a plain computation.  Before the clock
starts, a warm-up runs every step once and fills the long-lived pools
(parallel's cached thread pool, strand's pool) to their full size, so that
their threads are all there at the first report: a later rise of the thread
count is then a leak.

Every ``--report-every`` seconds (default 60) the drivers are paused between
two steps and one line is printed: elapsed minutes, operations per second of
each kind since the last report, total operations, resident memory (MiB, from
/proc/self/statm after a garbage collection), the OS thread count and the
resident memory change since the first report.  The summary at the end gives
resident memory first/last/max and growth, total operations and the error
counts.  An operation counts one task, item or call that ran.

Exit status: 0 if all went well; 1 if any operation gave a wrong result or
an unexpected error, or if the thread count grew between the first and the
last report; 3 if a driver stayed inside one step for longer than
``STEP_TIMEOUT_S`` (its stack is dumped); 2 for bad arguments.
"""
import argparse
import faulthandler
import gc
import itertools
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import _lateral  # noqa: E402
import parallel  # noqa: E402
import pylateral  # noqa: E402
import strand  # noqa: E402

# Step sizes: small enough that a step takes a fraction of a second here
# (and a few seconds under valgrind), so reports and the end are on time.
PLAIN_TASKS = 1000
NESTED_PARENTS, NESTED_CHILDREN = 50, 10
RETURN_TASKS = 200
GROUP_TASKS, GROUP_SIZE = 20, 5
TASK_WORKERS = 8
RAISING_TASKS = 3
CYCLE_WORKERS, CYCLE_TASKS = 3, 20
MAP_ITEMS = 2000
DICT_ITEMS = 100
PAR_CALLS = 20
SILENT_ITEMS = 500
PROCESS_ITEMS = 200
PROCESS_EVERY_S = 10.0
STRAND_CALLS = 200
STORE_TASKS = 50
SQLITE_TASKS = 20
FAIL_EVERY = 7          # item i fails when i % FAIL_EVERY == 0 (silent steps)

STEP_TIMEOUT_S = 600.0  # a step longer than this is a hang (valgrind included)
RESULT_TIMEOUT_S = 300.0
BARRIER_TIMEOUT_S = 120.0
MAX_DETAILS = 10        # failure details kept for the summary

KINDS = ("tasks", "raises", "cycles", "map", "par", "silent", "proc",
         "strand", "store", "sqlite")


# ---------------------------------------------------------------------------
# Task bodies (module level, so that processes and store readers find them)
# ---------------------------------------------------------------------------

class SoakFailure(Exception):
    """The exception the soak's failing calls raise on purpose."""


def triple(x):
    """The function of the parallel steps."""
    return 3 * x


def add(a, b=0):
    """The function of the par calls."""
    return a + b


def triple_or_fail(x):
    """Fails on multiples of FAIL_EVERY, else triples."""
    if x % FAIL_EVERY == 0:
        raise SoakFailure(x)
    return 3 * x


def expected_silent(items):
    """What a silent map of triple_or_fail over ``items`` must give: the
    succeeded values and the failed parameters, in input order."""
    succeeded = [3 * x for x in items if x % FAIL_EVERY]
    failed = [x for x in items if x % FAIL_EVERY == 0]
    return succeeded, failed


def store_square(x):
    """The function of the store tasks (resolved by name by the readers)."""
    return x * x


@pylateral.task
def record(sink, value):
    """Appends ``value`` (list.append is atomic)."""
    sink.append(value)


@pylateral.task
def spawn_children(sink, parent, count):
    """A task that starts ``count`` nested tasks."""
    for child in range(count):
        record(sink, parent * 1000 + child)


@pylateral.task(has_return_value=True)
def square_task(x):
    """A task whose return value is collected on the pool (or group)."""
    return x * x


@pylateral.task
def group_sum(sink, base, size):
    """A task waiting on a task group of its own nested tasks."""
    with pylateral.task_group() as group:
        for i in range(size):
            square_task(base + i)
    sink.append(sum(group.results))


@pylateral.task
def fail_task(token):
    """A task that raises."""
    raise SoakFailure(token)


# ---------------------------------------------------------------------------
# Bookkeeping shared by the drivers and the reporter
# ---------------------------------------------------------------------------

class Ledger:
    """Operation counts and failures of one driver (written by it alone;
    read by the reporter while the driver is paused)."""

    def __init__(self, name):
        self.name = name
        self.ops = dict.fromkeys(KINDS, 0)
        self.wrong = 0
        self.unexpected = 0
        self.details = {}   # first line -> [times seen, full text]
        self.step = None

    def count(self, kind, n):
        """``n`` more operations of ``kind`` ran."""
        self.ops[kind] += n

    def check(self, kind, ok, what):
        """Record a wrong result of ``kind`` unless ``ok``."""
        if not ok:
            self.wrong += 1
            self._detail(f"{kind}: wrong result: {what}", "")
        return ok

    def unexpected_error(self, kind, exc):
        """Record an exception no step expected."""
        self.unexpected += 1
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self._detail(f"{kind}: unexpected {type(exc).__name__}: {exc}", text)

    def _detail(self, headline, text):
        """Keep the first MAX_DETAILS distinct failures, counting repeats."""
        seen = self.details.get(headline)
        if seen is not None:
            seen[0] += 1
        elif len(self.details) < MAX_DETAILS:
            self.details[headline] = [1, text]

    def describe(self):
        """Lines describing the failures kept, for the summary."""
        lines = []
        for headline, (times, text) in self.details.items():
            lines.append(f"[{self.name}] {headline} (x{times})")
            lines.extend("    " + line for line in text.rstrip().splitlines())
        return lines


class Gate:
    """Lets the reporter stop every driver between two steps, so that thread
    counts and memory are read while nothing of the soak runs."""

    def __init__(self, drivers):
        self._cond = threading.Condition()
        self._paused = False
        self._parked = 0
        self._active = drivers

    def checkpoint(self):
        """Called by a driver between steps: parks it while paused."""
        with self._cond:
            if not self._paused:
                return
            self._parked += 1
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._paused)
            self._parked -= 1

    def leave(self):
        """A driver has ended: it no longer needs to be waited for."""
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def pause(self, timeout):
        """Stop every driver at its next checkpoint; False if one did not
        get there within ``timeout`` seconds."""
        with self._cond:
            self._paused = True
            return self._cond.wait_for(lambda: self._parked >= self._active, timeout)

    def resume(self):
        """Let the drivers go on."""
        with self._cond:
            self._paused = False
            self._cond.notify_all()


# ---------------------------------------------------------------------------
# Drivers: each a list of steps, run in turn until told to stop
# ---------------------------------------------------------------------------

class Driver:
    """Runs its steps round-robin in a thread of its own."""

    name = "driver"

    def __init__(self, gate, stop):
        self.ledger = Ledger(self.name)
        self._gate = gate
        self._stop = stop
        self.thread = threading.Thread(target=self._loop, name=f"soak-{self.name}",
                                       daemon=True)

    def steps(self):
        """(kind, callable) pairs, run in this order, over and over."""
        raise NotImplementedError

    def warm_up(self):
        """Run every step once and start every long-lived thread."""
        for kind, step in self.steps():
            self._run(kind, step)

    def close(self):
        """Release what the driver keeps open."""

    def _loop(self):
        try:
            for kind, step in itertools.cycle(self.steps()):
                self._gate.checkpoint()
                if self._stop.is_set():
                    return
                self._run(kind, step)
        finally:
            self._gate.leave()

    def _run(self, kind, step):
        self.ledger.step = kind
        try:
            step()
        except Exception as exc:  # the soak goes on; the summary reports it
            self.ledger.unexpected_error(kind, exc)
        self.ledger.step = None


class PylateralDriver(Driver):
    """Fire-and-forget task bursts, raising bursts and pool cycles."""

    name = "pylateral"

    def steps(self):
        """Task bursts, raising bursts, pool cycles."""
        return [("tasks", self.task_burst), ("raises", self.raising_burst),
                ("cycles", self.pool_cycle)]

    def task_burst(self):
        """Plain, nested, returning and grouped tasks in one pool."""
        plain, nested, sums = [], [], []
        with pylateral.task_pool(max_workers=TASK_WORKERS) as pool:
            for i in range(PLAIN_TASKS):
                record(plain, i)
            for parent in range(NESTED_PARENTS):
                spawn_children(nested, parent, NESTED_CHILDREN)
            for i in range(RETURN_TASKS):
                square_task(i)
            for g in range(GROUP_TASKS):
                group_sum(sums, g * GROUP_SIZE, GROUP_SIZE)
        check = self.ledger.check
        check("tasks", sorted(plain) == list(range(PLAIN_TASKS)), f"{len(plain)} plain tasks ran")
        want = sorted(p * 1000 + c for p in range(NESTED_PARENTS) for c in range(NESTED_CHILDREN))
        check("tasks", sorted(nested) == want, f"{len(nested)} nested tasks ran")
        check("tasks", sorted(pool.return_values()) == [i * i for i in range(RETURN_TASKS)],
              f"{len(pool.return_values())} return values")
        want = sorted(sum((b + i) ** 2 for i in range(GROUP_SIZE))
                      for b in range(0, GROUP_TASKS * GROUP_SIZE, GROUP_SIZE))
        check("tasks", sorted(sums) == want, f"group sums {sorted(sums)}")
        self.ledger.count("tasks", PLAIN_TASKS + NESTED_PARENTS * (1 + NESTED_CHILDREN)
                          + RETURN_TASKS + GROUP_TASKS * (1 + GROUP_SIZE))

    def raising_burst(self):
        """Tasks that raise: the first error reaches the driver, all are in
        ``pool.errors``, and the re-armed pool runs later tasks."""
        after = []
        with pylateral.task_pool(max_workers=TASK_WORKERS) as pool:
            # The first error is raised by the next task call or join(),
            # whichever comes after it: a slow submission loop (threads
            # started on demand, valgrind) can see it at a call.
            try:
                for token in range(RAISING_TASKS):
                    fail_task(token)
                pylateral.join()
                raised = None
            except SoakFailure as exc:
                raised = exc
            for i in range(CYCLE_TASKS):
                record(after, i)
        check = self.ledger.check
        if not check("raises", raised is not None, "join() did not raise"):
            return
        errors = list(pool.errors)
        check("raises", errors and errors[0] is raised, f"first of pool.errors {errors[:1]!r}")
        check("raises", 1 <= len(errors) <= RAISING_TASKS
              and all(isinstance(e, SoakFailure) and e.args[0] in range(RAISING_TASKS)
                      for e in errors), f"pool.errors {errors!r}")
        check("raises", sorted(after) == list(range(CYCLE_TASKS)),
              f"{len(after)} tasks ran after the error")
        self.ledger.count("raises", len(errors))

    def pool_cycle(self):
        """Open a bare core pool, run tasks and a batch on it, close it."""
        sink = []
        pool = _lateral.Pool(CYCLE_WORKERS, "soak-cycle")
        try:
            for i in range(CYCLE_TASKS):
                pool.submit(sink.append, (i,))
            batch = pool.map(triple, range(CYCLE_TASKS))
            results = batch.result(RESULT_TIMEOUT_S)
            pool.join(RESULT_TIMEOUT_S)
        finally:
            pool.close()
        self.ledger.check("cycles", sorted(sink) == list(range(CYCLE_TASKS)),
                          f"{len(sink)} submitted tasks ran")
        self.ledger.check("cycles", results == [3 * i for i in range(CYCLE_TASKS)],
                          "batch results")
        self.ledger.count("cycles", 1)


class ParallelDriver(Driver):
    """parallel.map / par on threads, silent failures, process maps."""

    name = "parallel"

    def __init__(self, gate, stop):
        super().__init__(gate, stop)
        self._next_process_map = 0.0

    def steps(self):
        """Thread maps, par, silent maps, process maps."""
        return [("map", self.thread_map), ("par", self.par_calls),
                ("silent", self.silent_map), ("proc", self.process_map)]

    def warm_up(self):
        """Every step once, then every thread of parallel's cached pool."""
        super().warm_up()
        # A map whose items all wait for each other starts every thread of
        # parallel's cached pool.
        workers = parallel._params.default_thread_workers()
        barrier = threading.Barrier(workers, timeout=BARRIER_TIMEOUT_S)
        parallel.map(lambda _: barrier.wait(), range(workers), max_workers=workers,
                     timeout=RESULT_TIMEOUT_S)

    def thread_map(self):
        """A list map and a dict map."""
        items = range(MAP_ITEMS)
        results = parallel.map(triple, items, timeout=RESULT_TIMEOUT_S)
        self.ledger.check("map", results == [3 * x for x in items], "list map")
        keyed = {f"k{i}": i for i in range(DICT_ITEMS)}
        results = parallel.map(triple, keyed, timeout=RESULT_TIMEOUT_S)
        self.ledger.check("map", results == {k: 3 * v for k, v in keyed.items()}, "dict map")
        self.ledger.count("map", MAP_ITEMS + DICT_ITEMS)

    def par_calls(self):
        """par over tuples, futures and bare callables."""
        calls = {}
        for i in range(PAR_CALLS):
            if i % 3 == 0:
                calls[i] = (add, i, i)
            elif i % 3 == 1:
                calls[i] = parallel.future(add, i, b=i)
            else:
                calls[i] = lambda i=i: 2 * i
        results = parallel.par(calls, timeout=RESULT_TIMEOUT_S)
        self.ledger.check("par", results == {i: 2 * i for i in range(PAR_CALLS)}, "par results")
        self.ledger.count("par", PAR_CALLS)

    def silent_map(self):
        """A silent map whose failures stay in place."""
        self._check_silent("silent", parallel.map, SILENT_ITEMS)

    def process_map(self):
        """A small silent process map, every PROCESS_EVERY_S seconds."""
        now = time.monotonic()
        if now < self._next_process_map:
            return
        self._next_process_map = now + PROCESS_EVERY_S
        self._check_silent("proc", parallel.process.map, PROCESS_ITEMS)

    def _check_silent(self, kind, map_fn, count):
        items = list(range(count))
        results = map_fn(triple_or_fail, items, silent=True, timeout=RESULT_TIMEOUT_S)
        succeeded, failed = expected_silent(items)
        self.ledger.check(kind, len(results) == count and results.succeeded == succeeded,
                          "succeeded values")
        failures = results.failed
        self.ledger.check(kind, [f.params for f in failures] == [(x,) for x in failed]
                          and all(isinstance(f.ex, SoakFailure) for f in failures),
                          f"{len(failures)} failures, {failures[:2]!r}...")
        self.ledger.count(kind, count)


class StrandDriver(Driver):
    """Thread runners, and store tasks through a dict and an SQLite store."""

    name = "strand"

    def __init__(self, gate, stop):
        super().__init__(gate, stop)
        self._tmp = tempfile.mkdtemp(prefix="lateral-soak-")
        self._dict_store = {}
        self._sqlite_store = strand.SqliteStore(os.path.join(self._tmp, "tasks.db"))
        self._writers = [strand.StoreTaskWriter(store_square, store)
                         for store in (self._dict_store, self._sqlite_store)]
        self._readers = [strand.StoreTaskReader(store, poll_interval=0.001,
                                                max_poll_interval=0.05).listen()
                         for store in (self._dict_store, self._sqlite_store)]

    def steps(self):
        """Thread runners, dict-store tasks, SQLite-store tasks."""
        return [("strand", self.thread_runner), ("store", self.dict_store_tasks),
                ("sqlite", self.sqlite_store_tasks)]

    def warm_up(self):
        """Every step once, then every thread of strand's pool."""
        super().warm_up()
        # Calls that all wait for each other start every thread of strand's pool.
        workers = strand.thread_pool().max_workers
        barrier = threading.Barrier(workers, timeout=BARRIER_TIMEOUT_S)
        runner = strand.ThreadTaskrunner(barrier.wait)
        for handle in [runner() for _ in range(workers)]:
            handle.result(RESULT_TIMEOUT_S)

    def close(self):
        """Stop the readers and delete the SQLite file."""
        for reader in self._readers:
            reader.stop(RESULT_TIMEOUT_S)
        self._sqlite_store.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def thread_runner(self):
        """Calls with on_end, and calls that raise."""
        ends = []
        runner = strand.ThreadTaskrunner(triple, on_end=ends.append)
        handles = [runner(i) for i in range(STRAND_CALLS)]
        values = [h.result(RESULT_TIMEOUT_S) for h in handles]
        want = [3 * i for i in range(STRAND_CALLS)]
        self.ledger.check("strand", values == want, "handle results")
        self.ledger.check("strand", sorted(ends) == want, f"{len(ends)} on_end calls")
        failing = strand.ThreadTaskrunner(triple_or_fail)
        handle = failing(FAIL_EVERY)
        handle.join(RESULT_TIMEOUT_S)
        error = handle.exception(RESULT_TIMEOUT_S)
        self.ledger.check("strand", isinstance(error, SoakFailure)
                          and error.args == (FAIL_EVERY,), f"failing call gave {error!r}")
        self.ledger.count("strand", STRAND_CALLS + 1)

    def dict_store_tasks(self):
        """Store tasks on a dict (MappingTaskQueue)."""
        self._store_tasks("store", self._writers[0], self._dict_store, STORE_TASKS)

    def sqlite_store_tasks(self):
        """Store tasks on an SQLite file."""
        self._store_tasks("sqlite", self._writers[1], self._sqlite_store, SQLITE_TASKS)

    def _store_tasks(self, kind, writer, store, count):
        tasks = [writer(i) for i in range(count)]
        values = [task.result(RESULT_TIMEOUT_S) for task in tasks]
        self.ledger.check(kind, values == [i * i for i in range(count)], "store results")
        for task in tasks:  # keep the store from growing for the whole soak
            del store[task.id]
        self.ledger.count(kind, count)


DRIVERS = (PylateralDriver, ParallelDriver, StrandDriver)


# ---------------------------------------------------------------------------
# Measuring and reporting
# ---------------------------------------------------------------------------

def rss_mib():
    """Resident set size in MiB, read after a full collection."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def os_thread_count():
    """Threads of this process, as the kernel counts them."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise RuntimeError("no Threads: line in /proc/self/status")


class Reporter:
    """Prints one line per report and keeps the figures for the summary."""

    def __init__(self, drivers):
        self._drivers = drivers
        self._last_ops = dict.fromkeys(KINDS, 0)
        self._last_time = None
        self.samples = []   # (elapsed s, total ops, rss MiB, threads)

    def start(self, now):
        """The clock starts: rates are counted from here."""
        self._last_time = now
        self._last_ops = self.totals()
        header = "".join(f"{kind + '/s':>10}" for kind in KINDS)
        print(f"{'min':>6}{header}{'total ops':>13}{'RSS MiB':>9}{'threads':>8}{'dRSS MiB':>9}",
              flush=True)

    def totals(self):
        """Operations of each kind so far, all drivers."""
        ops = dict.fromkeys(KINDS, 0)
        for driver in self._drivers:
            for kind, n in driver.ledger.ops.items():
                ops[kind] += n
        return ops

    def report(self, now, elapsed):
        """Print one line (the drivers are paused)."""
        ops = self.totals()
        seconds = max(now - self._last_time, 1e-9)
        rates = "".join(f"{(ops[k] - self._last_ops[k]) / seconds:>10,.0f}" for k in KINDS)
        rss, threads, total = rss_mib(), os_thread_count(), sum(ops.values())
        self.samples.append((elapsed, total, rss, threads))
        delta = rss - self.samples[0][2]
        print(f"{elapsed / 60:>6.2f}{rates}{total:>13,}{rss:>9.1f}{threads:>8}{delta:>+9.1f}",
              flush=True)
        self._last_time, self._last_ops = now, ops


def summarize(reporter, drivers, minutes):
    """Print the summary; the list of reasons to fail (empty if none)."""
    samples = reporter.samples
    first, last = samples[0], samples[-1]
    peak = max(s[2] for s in samples)
    growth = 100.0 * (last[2] - first[2]) / first[2]
    wrong = sum(d.ledger.wrong for d in drivers)
    unexpected = sum(d.ledger.unexpected for d in drivers)
    totals = reporter.totals()
    print(f"\nsummary: {minutes:g} min, {len(samples)} reports")
    print(f"  RSS first {first[2]:.1f} MiB, last {last[2]:.1f} MiB, max {peak:.1f} MiB, "
          f"growth {growth:+.1f}%")
    print(f"  threads first {first[3]}, last {last[3]}")
    print(f"  total ops {sum(totals.values()):,} ("
          + ", ".join(f"{k} {totals[k]:,}" for k in KINDS) + ")")
    print(f"  wrong results = {wrong}, errors unexpected = {unexpected}")
    for driver in drivers:
        for line in driver.ledger.describe():
            print("  " + line)
    reasons = []
    if wrong:
        reasons.append(f"{wrong} wrong results")
    if unexpected:
        reasons.append(f"{unexpected} unexpected errors")
    if last[3] > first[3]:
        reasons.append(f"thread count grew from {first[3]} to {last[3]}")
    return reasons


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def positive_number(text):
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def parse_args(argv):
    """The validated command line: ``minutes`` and ``report_every``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=positive_number, required=True,
                        help="how long to run (fractions allowed: 0.05 = 3 s)")
    parser.add_argument("--report-every", type=positive_number, default=60.0,
                        metavar="SECONDS", help="seconds between reports (default 60)")
    return parser.parse_args(argv)


def stuck(drivers, waited):
    """A driver did not finish its step in time: say which, dump every stack."""
    for driver in drivers:
        if driver.ledger.step is not None:
            print(f"STUCK: driver {driver.name} still in step {driver.ledger.step!r} "
                  f"after {waited:.0f} s", flush=True)
    faulthandler.dump_traceback(all_threads=True)
    sys.stderr.flush()
    os._exit(3)  # hung threads would keep the interpreter from exiting


def pause_or_die(gate, drivers):
    """Pause every driver between steps, or exit 3 if one is stuck."""
    if not gate.pause(STEP_TIMEOUT_S):
        stuck(drivers, STEP_TIMEOUT_S)


def run(minutes, report_every):
    """The soak itself; returns the exit status."""
    stop = threading.Event()
    gate = Gate(len(DRIVERS))
    drivers = [driver_class(gate, stop) for driver_class in DRIVERS]
    start_threads = os_thread_count()
    began = time.monotonic()
    for driver in drivers:
        driver.warm_up()
    print(f"soak: {minutes:g} min, a report every {report_every:g} s, pid {os.getpid()}, "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; warm-up "
          f"{time.monotonic() - began:.1f} s, threads {start_threads} -> {os_thread_count()}",
          flush=True)
    reporter = Reporter(drivers)
    start = time.monotonic()
    end = start + minutes * 60
    reporter.start(start)
    for driver in drivers:
        driver.thread.start()
    try:
        drive(gate, drivers, reporter, start, end, report_every)
    finally:
        stop.set()
        gate.resume()
        for driver in drivers:
            driver.thread.join(STEP_TIMEOUT_S)
    reasons = summarize(reporter, drivers, minutes)
    for driver in drivers:
        driver.close()
    parallel.shutdown()
    print(f"  threads after closing the soak's pools: {os_thread_count()} "
          "(strand's shared pool stays open until exit)")
    print("  result: " + ("FAILED: " + "; ".join(reasons) if reasons else "OK"), flush=True)
    return 1 if reasons else 0


def drive(gate, drivers, reporter, start, end, report_every):
    """Sleep until each report is due, pause the drivers, report; the last
    report is taken at the end, with the drivers paused too."""
    next_report = start + report_every
    while True:
        # A last interval shorter than a quarter of the others would give
        # rates of a few steps: the report before the end covers it instead.
        due = end if next_report + report_every / 4 >= end else next_report
        time.sleep(max(0.0, due - time.monotonic()))
        pause_or_die(gate, drivers)
        now = time.monotonic()
        reporter.report(now, now - start)
        if now >= end:
            return
        next_report += report_every
        gate.resume()


def main(argv=None):
    """Run the soak from the command line; returns the exit status."""
    args = parse_args(argv)
    return run(args.minutes, args.report_every)


if __name__ == "__main__":
    sys.exit(main())
