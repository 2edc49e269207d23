"""Signals that land at a bad moment, and work left running at exit (issue 9,
parts 3 and 4).

CPython runs a Python signal handler as a function starts, after a call
returns and at a loop's jump back; one that raises (Ctrl-C) can do so at any
of those places in the library's code.  Two kinds of scenario check that
this never leaves a pool registered or its threads alive: real signals
(``setitimer``) at random moments, and a KeyboardInterrupt injected at each
such place in turn through an opcode trace function, which reaches the
windows a timer rarely hits.  Then: one Ctrl-C delivered twice prints one
traceback, and work started fire-and-forget finishes before the interpreter
exits, unless Ctrl-C stops the wait.

Every scenario runs in a fresh interpreter with a generous deadline and
reports what it saw as its last JSON line.
"""
import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor

import _lateral
import _lateral_sync
import parallel
import pylateral
import pytest

from common_support import PATIENCE, RaisesAsWithBegins
from pylateral_support import child_env, run_child

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]

#: Seconds a child may take; a healthy one needs a few.
DEADLINE = 120

#: What a crash of the interpreter (or of the C core) writes to stderr.
CRASH_MARKERS = ("Fatal Python error", "Segmentation fault", "Aborted", "core dumped")


def run(body, timeout=DEADLINE):
    """Run ``body`` (dedented) in a fresh interpreter."""
    return run_child(textwrap.dedent(body).strip() + "\n", timeout=timeout)


def report_of(completed):
    """The JSON line the child printed last (its stderr shown on failure)."""
    lines = completed.stdout.strip().splitlines()
    assert lines, f"no report; exit status {completed.returncode}\n{completed.stderr}"
    return json.loads(lines[-1])


def report_of_run(body):
    """Run ``body`` in a fresh interpreter, which must succeed; its report."""
    completed = run(body)
    assert completed.returncode == 0, completed.stderr
    return report_of(completed)


#: Helpers of the children: the injector and thread counts.
CHILD_PRELUDE = """
import dis, gc, json, os, signal, sys, threading, time
import _lateral

class Injected(KeyboardInterrupt):
    '''Raised where a signal handler could raise (Ctrl-C).'''

_after = {}

def instruction_after(code, offset):
    '''The offset of the instruction that follows the one at ``offset``.'''
    if code not in _after:
        offsets = [i.offset for i in dis.get_instructions(code)]
        _after[code] = dict(zip(offsets, offsets[1:]))
    return _after[code].get(offset)

def run_interrupted(body, files, n):
    '''Run body() with Injected raised at the n-th place, in code of
    ``files``, where the interpreter runs signal handlers: as a function
    starts, after a call returns, and at a loop's jump back.  Returns the
    names of the functions on the stack there (innermost first), or None if
    body has fewer such places.'''
    seen = [0]
    stack = []
    last = {}
    def local(frame, event, arg):
        if event != "opcode":
            return local
        here = frame.f_lasti
        previous = last.get(frame)
        last[frame] = (here, dis.opname[frame.f_code.co_code[here]])
        if (previous is None or here < previous[0]
                or (previous[1].startswith("CALL")
                    and here == instruction_after(frame.f_code, previous[0]))):
            seen[0] += 1
            if seen[0] == n:
                while frame is not None:
                    stack.append(frame.f_code.co_name)
                    frame = frame.f_back
                raise Injected()  # also ends the tracing
        return local
    def tracer(frame, event, arg):
        if frame.f_code.co_filename not in files:
            return None
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return local
    sys.settrace(tracer)
    try:
        body()
    except Injected:
        return stack
    finally:
        sys.settrace(None)
        last.clear()  # the frames, and what they hold
    return None

def interrupted_everywhere(body, files):
    '''Run body() once per place of run_interrupted(), interrupted there;
    yield (n, stack) after each run.'''
    n = 0
    while True:
        n += 1
        # Once whole first: since 3.12, tracing stopped by the exception
        # starts again reporting opcodes from a code's second run only.
        run_interrupted(body, files, 0)
        stack = run_interrupted(body, files, n)
        if stack is None:
            return
        yield n, stack

def threads_named(prefix):
    return sum(t.name.startswith(prefix) for t in threading.enumerate())

def settle(prefix, at_most, patience=2.0):
    '''Threads named ``prefix`` once at most ``at_most`` remain (closing
    pools' threads end on their own), or after ``patience`` seconds.'''
    deadline = time.monotonic() + patience
    while threads_named(prefix) > at_most and time.monotonic() < deadline:
        time.sleep(0.005)
    return threads_named(prefix)

def shut_down_parallel_and_report(report):
    import parallel
    parallel.shutdown()
    report["threads after shutdown"] = settle("parallel-", 0)
    print(json.dumps(report))
"""


# -- part 3: pylateral.task_pool() interrupted -------------------------------

PYLATERAL_INJECTED = CHILD_PRELUDE + """
import pylateral
FILES = {sys.modules["pylateral.pool"].__file__}

@pylateral.task
def noop():
    pass

def open_pool():
    with pylateral.task_pool(max_workers=2):
        noop()

def live_task_pools_holding_open_pools():
    return sum(isinstance(o, pylateral.TaskPool) and o._core is not None
               and not o._core.closed for o in gc.get_objects())

def open_pool_current():
    current = _lateral.get_current_pool()
    return current is not None and not current.closed

points = []
before = threads_named("pylateral-")
for n, stack in interrupted_everywhere(open_pool, FILES):
    gc.collect()
    point = {
        "n": n,
        "in": stack[0],
        "during __enter__": "__enter__" in stack,
        "open pool left current": open_pool_current(),
        "open pools still held": live_task_pools_holding_open_pools(),
    }
    try:
        open_pool()
        point["next task_pool()"] = "opens"
    except Exception as exc:
        point["next task_pool()"] = repr(exc)
        _lateral.set_current_pool(None)
    point["open pool current after it"] = open_pool_current()
    point["threads left"] = settle("pylateral-", before) - before
    before = threads_named("pylateral-")
    points.append(point)
print(json.dumps({"points": points}))
"""


@pytest.fixture(scope="module")
def injected_task_pool():
    """The report of PYLATERAL_INJECTED: one point per place interrupted."""
    return report_of_run(PYLATERAL_INJECTED)


def test_an_interruption_anywhere_in_task_pool_leaves_no_pool_registered(injected_task_pool):
    points = injected_task_pool["points"]
    assert {"__enter__", "__exit__", "_close"} <= {p["in"] for p in points}
    # Interrupted while opening, the pool is undone at once.
    entering = [p for p in points if p["during __enter__"]]
    assert entering
    assert [p for p in entering if p["open pool left current"]] == []
    # Anywhere (even as __exit__ starts, before any cleanup can run),
    # nothing keeps an open pool, and the next task_pool() opens and leaves
    # none registered.
    assert [p for p in points if p["open pools still held"]] == []
    assert [p for p in points if p["next task_pool()"] != "opens"] == []
    assert [p for p in points if p["open pool current after it"]] == []


def test_an_interruption_anywhere_in_task_pool_leaves_no_thread(injected_task_pool):
    # Even where the pool is lost (the signal lands as the constructor
    # returns, before Python code can hold it): the core closes a pool that
    # nothing refers to.
    assert [p for p in injected_task_pool["points"] if p["threads left"]] == []


PYLATERAL_ALARMS = CHILD_PRELUDE + """
import math
import random
import pylateral

class Alarm(Exception):
    pass

def alarm(signum, frame):
    raise Alarm()

signal.signal(signal.SIGALRM, alarm)

@pylateral.task
def noop():
    pass

random.seed(1)
counts = {"tries": 0, "interrupted": 0, "refused": 0, "open pool left current": 0}
for _ in range(300):
    counts["tries"] += 1
    try:
        try:
            # Mostly while the pool opens and starts its thread, sometimes
            # later: log-uniform from 20 us to 3 ms, so that as many land
            # in a pool that opens and closes in 100 us as in a slow one.
            delay = math.exp(random.uniform(math.log(0.00002), math.log(0.003)))
            signal.setitimer(signal.ITIMER_REAL, delay)
            with pylateral.task_pool(max_workers=4):
                noop()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except Alarm:
        counts["interrupted"] += 1
    except pylateral.TaskPoolAlreadyAllocated:
        counts["refused"] += 1
    # An alarm landing as __exit__ starts, before any of its code, can leave
    # the pool current (documented): the next task_pool() must close it.
# After one clean block, no open pool is left current.
with pylateral.task_pool(max_workers=1):
    noop()
current = _lateral.get_current_pool()
if current is not None and not current.closed:
    counts["open pool left current"] += 1
counts["threads left"] = settle("pylateral-", 0)
print(json.dumps(counts))
"""


@pytest.fixture(scope="module")
def alarmed_task_pool():
    """The report of PYLATERAL_ALARMS."""
    return report_of_run(PYLATERAL_ALARMS)


def test_alarms_during_task_pool_leave_no_pool_registered(alarmed_task_pool):
    report = alarmed_task_pool
    assert report["interrupted"] >= report["tries"] // 10, report  # the alarms did land
    assert report["refused"] == 0
    assert report["open pool left current"] == 0


def test_alarms_during_task_pool_leave_no_thread(alarmed_task_pool):
    assert alarmed_task_pool["threads left"] == 0


# -- part 3: parallel.map interrupted ----------------------------------------

PARALLEL_INJECTED = CHILD_PRELUDE + """
import glob
import parallel
FILES = set(glob.glob(os.path.join(os.path.dirname(parallel.__file__), "*.py")))

def square(x):
    return x * x

def blocking():
    assert parallel.map(square, range(6), max_workers=2) == [x * x for x in range(6)]

def in_a_with_block():
    with parallel.async_map(square, range(6), max_workers=2) as execution:
        assert execution.results() == [x * x for x in range(6)]

report = {"points": 0, "wrong next call": []}
for body in (blocking, in_a_with_block):
    for n, _ in interrupted_everywhere(body, FILES):
        report["points"] += 1
        if parallel.map(abs, [-1, -2], max_workers=2) != [1, 2]:
            report["wrong next call"].append((body.__name__, n))
# Once the interrupted calls and their batches are gone, their pools come
# back to the cache (at the next call), which keeps IDLE_POOLS of them.
bound = report["idle bound"] = (parallel._threads.IDLE_POOLS
                                * parallel._params.default_thread_workers())
deadline = time.monotonic() + 20
while True:
    gc.collect()
    parallel.map(abs, [-1], max_workers=2)
    report["threads once idle"] = settle("parallel-", bound, 0.1)
    if report["threads once idle"] <= bound or time.monotonic() > deadline:
        break
shut_down_parallel_and_report(report)
"""


def test_an_interruption_anywhere_in_parallel_map_leaks_no_pool():
    report = report_of_run(PARALLEL_INJECTED)
    assert report["points"] > 100  # both paths were interrupted all along
    assert report["wrong next call"] == []
    assert report["threads once idle"] <= report["idle bound"]
    assert report["threads after shutdown"] == 0


PARALLEL_ALARM_STORM = CHILD_PRELUDE + """
import parallel

class Alarm(Exception):
    pass

armed = False
def alarm(signum, frame):
    # One alarm per arming: the next one, landing in the except clause
    # before it disarms, would escape the loop.
    global armed
    if armed:
        armed = False
        raise Alarm()

signal.signal(signal.SIGALRM, alarm)

def square(x):
    return x * x

report = {"calls": 0, "interrupted": 0, "wrong": 0, "peak threads": 0}
signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
end = time.monotonic() + 2.0
while time.monotonic() < end:
    report["calls"] += 1
    try:
        armed = True
        result = parallel.map(square, range(20), max_workers=4)
        armed = False
        report["wrong"] += result != [x * x for x in range(20)]
    except Alarm:
        armed = False
        report["interrupted"] += 1
    if report["calls"] % 50 == 0:
        report["peak threads"] = max(report["peak threads"], threads_named("parallel-"))
signal.setitimer(signal.ITIMER_REAL, 0)
report["next call"] = parallel.map(square, [3, 4])
# The cached idle pools, and as many busy ones again at most.
report["bound"] = 2 * parallel._threads.IDLE_POOLS * parallel._params.default_thread_workers()
shut_down_parallel_and_report(report)
"""


def test_a_signal_every_millisecond_during_parallel_map_leaks_no_thread():
    report = report_of_run(PARALLEL_ALARM_STORM)
    assert report["interrupted"] >= 50, report  # the signals did land
    assert report["wrong"] == 0
    assert report["next call"] == [9, 16]
    assert report["threads after shutdown"] == 0
    assert report["peak threads"] <= report["bound"]


# -- part 3: one Ctrl-C, delivered twice --------------------------------------

#: Ctrl-C arrives twice (from the terminal and from a wrapper that forwards
#: it): once while the main thread waits, once while the pool's exit waits
#: for its workers, which sleep in C and cannot stop before.
DOUBLE_SIGINT = """
import os, signal, threading, time
import pylateral

entering_exit = threading.Event()

@pylateral.task
def sleeps():
    time.sleep(2)

def interrupt_twice(ready):
    while not ready():
        time.sleep(0.005)
    time.sleep(0.2)  # the main thread is in its wait
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)  # the pool's exit now waits for the sleeping workers
    os.kill(os.getpid(), signal.SIGINT)

{scenario}
"""

DOUBLE_SIGINT_SCENARIOS = {
    "task call blocked by block_when_saturated": """
        def blocked():  # both workers busy: the second call waits for one
            pool = pylateral.get_current_task_pool()
            return pool is not None and pool.pending == 2
        threading.Thread(target=interrupt_twice, args=(blocked,), daemon=True).start()
        with pylateral.task_pool(max_workers=2, block_when_saturated=True):
            for _ in range(10):
                sleeps()
    """,
    "pool exit": """
        threading.Thread(target=interrupt_twice, args=(entering_exit.is_set,),
                         daemon=True).start()
        with pylateral.task_pool(max_workers=2):
            for _ in range(4):
                sleeps()
            entering_exit.set()
    """,
}


@pytest.mark.parametrize("scenario", sorted(DOUBLE_SIGINT_SCENARIOS))
def test_ctrl_c_delivered_twice_prints_one_traceback(scenario):
    code = DOUBLE_SIGINT.format(scenario=textwrap.dedent(DOUBLE_SIGINT_SCENARIOS[scenario]))
    completed = run(code)
    # Python ends a program that Ctrl-C interrupted by SIGINT itself.
    assert completed.returncode == -signal.SIGINT, completed.stderr
    assert completed.stderr.count("Traceback") == 1, completed.stderr
    assert "During handling of the above exception" not in completed.stderr
    assert completed.stderr.rstrip().endswith("KeyboardInterrupt")


# -- part 4: fire-and-forget work finishes before the interpreter exits -------

#: Each scenario's last line starts work and the script ends; each call
#: prints its tag once it is done, after a pause that outlasts the script.
FIRE_AND_FORGET = """
import concurrent.futures, os, time
import parallel, strand

def say_done(tag):
    os.write(1, f"done {{tag}}\\n".encode())  # one write: processes share the pipe

def work(tag):
    time.sleep(0.3)
    say_done(tag)
    return tag

async def async_work(tag):
    say_done(tag)

def starts_more(tag):
    time.sleep(0.2)
    strand.ThreadTaskrunner(work)(tag + " (started by a task)")

@parallel.decorate(executor="process")
def decorated(tag):
    return work(tag)

{scenario}
"""

FIRE_AND_FORGET_SCENARIOS = {
    "strand thread": ("""
        strand.ThreadTaskrunner(work)("a")
    """, ["a"]),
    "strand thread, then one its call starts": ("""
        strand.ThreadTaskrunner(starts_more)("b")
    """, ["b (started by a task)"]),
    "strand process": ("""
        strand.MultiprocessTaskrunner(work, mp_context="fork",
                                      on_end=lambda tag: say_done(tag + " (on_end)"))("c")
    """, ["c", "c (on_end)"]),
    "strand coroutine": ("""
        strand.CoroutineTaskrunner(async_work)("d")
    """, ["d"]),
    "parallel.async_map on threads": ("""
        parallel.async_map(work, ["e1", "e2", "e3"], max_workers=2)
    """, ["e1", "e2", "e3"]),
    "parallel.async_map on processes": ("""
        parallel.process.async_map(work, ["f1", "f2", "f3"], max_workers=2)
    """, ["f1", "f2", "f3"]),
    "parallel.async_par of futures on threads": ("""
        parallel.async_par([parallel.future(work, "g1"), parallel.future(work, "g2")])
    """, ["g1", "g2"]),
    "parallel.async_par of decorated futures on processes": ("""
        parallel.async_par([decorated.future("h1"), decorated.future("h2")],
                           executor="process")
    """, ["h1", "h2"]),
    # The later calls are submitted during the exit, to the thread the
    # executor already has (Python 3.12 starts no thread at exit).
    "parallel.async_map on a ThreadPoolExecutor, one call at a time": ("""
        executor = concurrent.futures.ThreadPoolExecutor(1)
        parallel.async_map(work, ["i1", "i2", "i3"], executor=executor, max_workers=1)
    """, ["i1", "i2", "i3"]),
    "parallel execution shut down without waiting": ("""
        parallel.thread.async_map(work, ["j1", "j2"]).shutdown(wait=False)
    """, ["j1", "j2"]),
}


@pytest.mark.parametrize("scenario", sorted(FIRE_AND_FORGET_SCENARIOS))
def test_work_started_fire_and_forget_finishes_before_exit(scenario):
    code, tags = FIRE_AND_FORGET_SCENARIOS[scenario]
    completed = run(FIRE_AND_FORGET.format(scenario=textwrap.dedent(code)))
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    done = sorted(line.split(" ", 1)[1] for line in completed.stdout.splitlines()
                  if line.startswith("done "))
    assert done == sorted(tags)


#: Work that never ends, left running at the end of the script.
FOREVER_AT_EXIT = """
import os, signal, sys, threading, time
import parallel, strand

started = threading.Event()

def forever(_=None):
    started.set()
    while True:
        time.sleep(0.01)

def forever_in_a_process(_=None):
    while True:
        time.sleep(0.01)

{scenario}
print("exiting", flush=True)
"""

FOREVER_AT_EXIT_SCENARIOS = {
    "strand thread": """
        strand.ThreadTaskrunner(forever)()
        started.wait()
    """,
    "parallel.async_map on threads": """
        parallel.async_map(forever, range(2))
        started.wait()
    """,
    "parallel.async_map on processes": """
        parallel.process.async_map(forever_in_a_process, range(2), max_workers=2)
    """,
}


@pytest.mark.parametrize("scenario", sorted(FOREVER_AT_EXIT_SCENARIOS))
def test_ctrl_c_stops_the_wait_at_exit_promptly(scenario):
    code = FOREVER_AT_EXIT.format(scenario=textwrap.dedent(FOREVER_AT_EXIT_SCENARIOS[scenario]))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_env())
    try:
        assert proc.stdout.readline().strip() == "exiting"
        time.sleep(0.5)
        assert proc.poll() is None, "the interpreter exited without waiting for the work"
        signalled = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=DEADLINE)
        seconds = time.monotonic() - signalled
    finally:
        proc.kill()
        proc.wait()
    # As for a non-daemon thread: the interrupted wait is reported, not fatal.
    assert proc.returncode == 0, err
    assert "KeyboardInterrupt" in err
    for marker in CRASH_MARKERS:
        assert marker not in err, err
    assert seconds < PATIENCE / 2


def test_a_program_ended_by_ctrl_c_does_not_wait_for_its_work():
    completed = run("""
        import os, signal, threading, time
        import parallel, strand

        def forever(_=None):
            while True:
                time.sleep(0.01)

        strand.ThreadTaskrunner(forever)()
        parallel.async_map(forever, range(2))
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, uncaught
        time.sleep(60)
    """)
    assert completed.returncode == -signal.SIGINT, completed.stderr
    assert completed.stderr.rstrip().endswith("KeyboardInterrupt")
    assert completed.stderr.count("Traceback") == 1, completed.stderr


def test_locked_call_holds_the_lock_for_the_call_and_releases_it_whatever_it_raises():
    lock = threading.Lock()
    assert _lateral.locked_call(lock, lambda a, b: (a, b, lock.locked()), 1, 2) == (1, 2, True)
    assert not lock.locked()

    def fails(key):
        raise KeyError(key)

    with pytest.raises(KeyError, match="k"):
        _lateral.locked_call(lock, fails, "k")
    assert not lock.locked()
    with pytest.raises(TypeError, match="needs a lock and a function"):
        _lateral.locked_call(lock)


def _square(x):
    return x * x


@pytest.mark.timeout(120)
@pytest.mark.parametrize("where", ["thread executor", "parallel's processes"])
def test_a_run_on_futures_never_takes_its_lock_where_a_signal_could_leave_it_held(
        monkeypatch, where):
    # The executor's threads need the run's lock for every result: left held
    # by an interrupted waiter, they would hang the program's exit.
    monkeypatch.setattr(_lateral_sync, "threading", types.SimpleNamespace(Lock=RaisesAsWithBegins))
    items = list(range(200))
    if where == "thread executor":
        with ThreadPoolExecutor(2) as executor:
            results = parallel.map(_square, items, executor=executor, max_workers=3)
    else:
        results = parallel.process.map(_square, items, max_workers=2)
    assert list(results) == [x * x for x in items]


def test_a_process_cache_never_takes_its_lock_where_a_signal_could_leave_it_held(monkeypatch):
    # Held for good, that lock would stop every thread calling the function.
    monkeypatch.setattr(sys.modules["pylateral.cache"], "threading", types.SimpleNamespace(
        RLock=lambda: RaisesAsWithBegins(threading.RLock), local=threading.local))
    computed = []

    @pylateral.cache_result(pylateral.CacheScopes.PROCESS)
    def square(x):
        computed.append(x)
        return x * x

    assert [square(3), square(3), square(4)] == [9, 9, 16]
    square.clear_cache()
    assert square(3) == 9
    assert computed == [3, 4, 3]


@pytest.mark.timeout(120)
@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is 3.12+")
def test_halting_never_takes_its_lock_where_a_signal_could_leave_it_held(monkeypatch):
    # The main thread arms the line watch when a pool is cancelled, which is
    # where a second Ctrl-C lands.  Held for good, that lock would leave the
    # halted task running and close() waiting for it.
    import _lateral_halt

    monkeypatch.setattr(_lateral_halt, "_lock", RaisesAsWithBegins())
    looping = threading.Event()
    cancelled = []

    def loop_in_python():
        looping.set()
        try:
            while True:
                pass
        except _lateral.TaskCancelled:
            cancelled.append(True)
            raise

    pool = _lateral.Pool(1, "halt-lock")
    pool.submit(loop_in_python)
    assert looping.wait(PATIENCE)
    pool.close(cancel=True)
    assert cancelled == [True] and pool.threads == 0
