"""Faults across pylateral, parallel and strand: Ctrl-C while tasks run and
wait in the queue, interpreter exit with tasks still running, fork while the
pools are busy, tasks raising SystemExit, KeyboardInterrupt, MemoryError or an
exception whose ``__str__`` raises, and worker processes killed with SIGKILL.

``test_pylateral_faults.py`` covers pylateral's Ctrl-C at pool exit, its fork
with an open pool, ``sys.exit`` in a task and exit with tasks running; this
module covers the other entry points and packages.  Every scenario runs in a
fresh interpreter with a deadline, so a hang or a crash fails one test
instead of the run; a child reports what it saw as its last JSON line.
"""
import json
import signal
import subprocess
import sys
import textwrap

import pytest

from common_support import PATIENCE
from pylateral_support import child_env

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and fork"),
]

#: Seconds a child may take; a healthy one needs about one.
DEADLINE = 90

#: What a crash of the interpreter (or of the C core) writes to stderr.
CRASH_MARKERS = ("Fatal Python error", "Segmentation fault", "Aborted", "core dumped")

def run_script(body, *args, env=None, timeout=DEADLINE):
    """Run ``body`` (dedented) in a fresh interpreter, with ``args`` as its
    ``sys.argv[1:]`` and ``env`` added to the environment."""
    code = textwrap.dedent(body).strip() + "\n"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, timeout=timeout, env={**child_env(), **(env or {})})


def report_of(completed):
    """The JSON line the child printed last (its stderr shown on failure)."""
    lines = completed.stdout.strip().splitlines()
    assert lines, f"no report; exit status {completed.returncode}\n{completed.stderr}"
    return json.loads(lines[-1])


def assert_no_crash(completed, traceback_expected=False):
    """No crash report in the child's stderr (nor a traceback, unless expected)."""
    markers = CRASH_MARKERS if traceback_expected else CRASH_MARKERS + ("Traceback",)
    for marker in markers:
        assert marker not in completed.stderr, completed.stderr


# -- Ctrl-C while tasks run and others wait in the queue ----------------------

#: The common start of the Ctrl-C children.  Two ``busy`` calls run (the
#: pools have two workers) and the others are queued behind them; once both
#: run, a thread sends SIGINT to the process, as Ctrl-C in a terminal does.
#: The exit report is registered before the packages import the core, so it
#: runs after the core's own exit handler has stopped the pools.
SIGINT_PRELUDE = """
import atexit, json, os, signal, sys, threading, time
report = {"outcome": "no KeyboardInterrupt"}
ran = []

def pool_threads():
    return sorted(t.name for t in threading.enumerate()
                  if t.name.startswith(("pylateral-", "parallel-", "strand-")))

def report_at_exit():
    report["ran"] = len(ran)
    report["threads at exit"] = pool_threads()
    print(json.dumps(report), flush=True)

atexit.register(report_at_exit)
import parallel, pylateral, strand

started = threading.Semaphore(0)
release = threading.Event()

def busy(i):
    ran.append(i)
    started.release()
    while not release.is_set():
        time.sleep(0.005)

def ready_to_interrupt():  # a scenario may wait for more than two running calls
    return True

def interrupt_once_two_run():
    for _ in range(2):
        started.acquire()
    while not ready_to_interrupt():
        time.sleep(0.005)
    time.sleep(0.2)  # let the main thread settle into its blocking wait
    report["signalled at"] = time.monotonic()
    os.kill(os.getpid(), signal.SIGINT)

def interrupted():
    report["outcome"] = "KeyboardInterrupt"
    report["seconds"] = time.monotonic() - report["signalled at"]

threading.Thread(target=interrupt_once_two_run, name="interrupter", daemon=True).start()
"""

#: scenario -> (code after SIGINT_PRELUDE, what its report must also say).
SIGINT_SCENARIOS = {
    "pylateral join()": ("""
        try:
            with pylateral.task_pool(max_workers=2):
                for i in range(50):
                    pylateral.task(busy)(i)
                pylateral.join()
        except KeyboardInterrupt:
            interrupted()
        report["threads after"] = pool_threads()
    """, {"threads after": []}),
    "pylateral call blocked by block_when_saturated": ("""
        submitted = 0
        def ready_to_interrupt():
            pool = pylateral.get_current_task_pool()
            return pool is not None and pool.pending == 2 and submitted == 1
        try:
            with pylateral.task_pool(max_workers=2, block_when_saturated=True):
                for i in range(50):
                    pylateral.task(busy)(i)
                    submitted += 1
        except KeyboardInterrupt:
            interrupted()
        report["threads after"] = pool_threads()
        report["submitted"] = submitted
    """, {"threads after": [], "submitted": 1}),  # two running, the second call blocked
    "parallel.map": ("""
        try:
            parallel.map(busy, range(50), max_workers=2)
        except KeyboardInterrupt:
            interrupted()
        release.set()  # threads cannot be stopped: the running calls end on their own
        report["next call"] = parallel.map(abs, [-1, -2])
        parallel.shutdown()
        report["threads after"] = pool_threads()
    """, {"next call": [1, 2], "threads after": []}),
    "strand handle.join()": ("""
        handles = [strand.ThreadTaskrunner(busy)(i) for i in range(50)]
        try:
            handles[-1].join()
        except KeyboardInterrupt:
            interrupted()
        # Each handle is its own call (as with concurrent.futures): Ctrl-C
        # in one join cancels nothing, the caller cancels what it gave up.
        report["cancelled"] = sum(handle.cancel() for handle in handles)
        release.set()
        report["next call"] = strand.ThreadTaskrunner(abs)(-3).result(20)
    """, {"cancelled": 48, "next call": 3}),  # the shared pool's threads live until exit
}


@pytest.mark.parametrize("scenario", sorted(SIGINT_SCENARIOS))
def test_ctrl_c_with_running_and_queued_tasks_is_caught_and_drops_the_queue(scenario):
    code, expected = SIGINT_SCENARIOS[scenario]
    completed = run_script(SIGINT_PRELUDE + textwrap.dedent(code), env={"STRAND_WORKERS": "2"})
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    report = report_of(completed)
    assert report["outcome"] == "KeyboardInterrupt"
    assert report["seconds"] < PATIENCE  # interrupted, not finished: the tasks never end
    assert report["ran"] == 2  # the queued calls never started, not even at exit
    assert report["threads at exit"] == []
    assert {key: report.get(key) for key in expected} == expected


#: The interrupted wait, left uncaught: the calls still running never end by
#: themselves, so the process can only exit if the core stops them.
UNCAUGHT_SIGINT_SCENARIOS = {
    "parallel.map": """
        parallel.map(busy, range(50), max_workers=2)
    """,
    "strand handle.join()": """
        handles = [strand.ThreadTaskrunner(busy)(i) for i in range(50)]
        handles[0].join()
    """,
}


@pytest.mark.parametrize("scenario", sorted(UNCAUGHT_SIGINT_SCENARIOS))
def test_uncaught_ctrl_c_exits_the_process_and_drops_the_queue(scenario):
    completed = run_script(SIGINT_PRELUDE + textwrap.dedent(UNCAUGHT_SIGINT_SCENARIOS[scenario]),
                           env={"STRAND_WORKERS": "2"})
    # Python ends a program that Ctrl-C interrupted by SIGINT itself.
    assert completed.returncode == -signal.SIGINT, completed.stderr
    assert completed.stderr.rstrip().endswith("KeyboardInterrupt")
    assert_no_crash(completed, traceback_expected=True)
    report = report_of(completed)
    assert report["ran"] == 2
    assert report["threads at exit"] == []


# -- interpreter exit while tasks run ----------------------------------------

#: Calls that never end, sleeping (the GIL free) or spinning (holding it).
FOREVER = """
import sys, threading, time
started = threading.Semaphore(0)

def sleeps_forever(*_):
    started.release()
    while True:
        time.sleep(0.005)

def spins_forever(*_):
    started.release()
    while True:
        pass

def exits(code):
    sys.exit(code)

def wait_until_started(count):
    for _ in range(count):
        assert started.acquire(timeout=30), "the calls did not start"

def pool_threads():
    return [t.name for t in threading.enumerate()
            if t.name.startswith(("parallel-", "strand-"))]
"""


def test_interpreter_exits_cleanly_with_abandoned_parallel_calls_still_running():
    # Calls the program gave up on (cancelled) do not hold the exit, even
    # while they run forever; calls merely left unread are waited for
    # (test_halting_signals.py), so the unread ones here end at once.
    completed = run_script(FOREVER + """
import parallel, strand

sleeping = parallel.async_map(sleeps_forever, range(20), max_workers=2)
spinning = parallel.thread.async_par([spins_forever], max_workers=1)
wait_until_started(2 + 1)
sleeping.cancel()
spinning.cancel()
# A task's sys.exit() is that call's outcome, read or not (as with
# concurrent.futures): it does not end the program behind the caller's back.
unread_exit = parallel.async_map(exits, [7])
exited = strand.ThreadTaskrunner(exits)(8)
print("exiting with", len(pool_threads()), "pool threads busy;",
      "a task ended with", repr(exited.exception(30)))
""", env={"STRAND_WORKERS": "4"})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("exiting with")
    assert int(completed.stdout.split()[2]) >= 3
    assert completed.stdout.rstrip().endswith("a task ended with SystemExit(8)")
    assert completed.stderr == ""


EXIT_IN_A_TASK = {
    # Item 0 ends, item 1 exits, the later items run forever: map raises the
    # SystemExit of item 1 once item 0 is known to have succeeded.
    "parallel.map": """
        import parallel
        def item(i):
            if i == 0:
                time.sleep(0.05)
                return i
            if i == 1:
                exits(4)
            sleeps_forever()
        parallel.map(item, range(6), max_workers=4)
    """,
    # The other calls end later: the exit waits for them (as for threads).
    "strand result()": """
        import strand
        def slow():
            started.release()
            time.sleep(0.3)
            print("a slow call ended", flush=True)
        handles = [strand.ThreadTaskrunner(slow)() for _ in range(3)]
        wait_until_started(3)
        strand.ThreadTaskrunner(exits)(4).result(30)
    """,
}


@pytest.mark.parametrize("scenario", sorted(EXIT_IN_A_TASK))
def test_sys_exit_in_a_task_exits_with_its_code_while_other_tasks_run(scenario):
    completed = run_script(FOREVER + textwrap.dedent(EXIT_IN_A_TASK[scenario]) + """
print("still running after the call")
""", env={"STRAND_WORKERS": "4"})
    assert completed.returncode == 4, completed.stderr
    assert "still running after the call" not in completed.stdout
    if scenario == "strand result()":
        assert completed.stdout.count("a slow call ended") == 3
    assert completed.stderr == ""  # SystemExit leaves quietly, as in one thread


# -- fork while the pools are open and busy -----------------------------------

#: The three packages' pools are busy at the fork: pylateral's in the main
#: thread, parallel.map and a strand call each in a thread of their own, all
#: blocked until the fork is done.  The child uses every API (and opens
#: pools of its own); then the parent's pools finish their work and still
#: serve new calls.
FORK_CHILD = """
import json, multiprocessing, os, sys, threading, time
import parallel, pylateral, strand

started = threading.Semaphore(0)
forked = threading.Event()

def held_until_forked(x):
    started.release()
    assert forked.wait(30)
    return x * x

def square(x):
    return x * x

@pylateral.task(has_return_value=True)
def cube(x):
    if x < 2:
        held_until_forked(x)
    return x ** 3

def use_every_api():
    report = {}
    try:
        cube(1)
        report["inherited pylateral pool"] = "usable"
    except pylateral.PoolForkedError:
        report["inherited pylateral pool"] = "PoolForkedError"
    with pylateral.task_pool(max_workers=2) as pool:
        for x in range(2, 7):
            cube(x)
    report["pylateral"] = sorted(pool.return_values())
    report["parallel"] = parallel.map(square, range(5), max_workers=3)
    report["parallel process"] = parallel.process.map(square, range(5), max_workers=2)
    handles = [strand.ThreadTaskrunner(square)(x) for x in range(5)]
    report["strand"] = [handle.result(20) for handle in handles]
    return report

def in_mp_child(connection):
    connection.send(use_every_api())
    connection.close()

def forked_with_os_fork():
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(reader)
            os.write(writer, json.dumps(use_every_api()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        child = pipe.read()
    return json.loads(child or "null"), os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

def forked_with_multiprocessing():
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=in_mp_child, args=(sender,))
    process.start()
    sender.close()
    child = receiver.recv() if receiver.poll(30) else None
    process.join(30)
    return child, process.exitcode

busy = {}
def run_in_thread(name, fn):
    def run():
        try:
            busy[name] = fn()
        except BaseException as exc:
            busy[name] = repr(exc)
    thread = threading.Thread(target=run)
    thread.start()
    return thread

fork = forked_with_os_fork if sys.argv[1] == "os.fork" else forked_with_multiprocessing
threads = [
    run_in_thread("parallel", lambda: parallel.map(held_until_forked, range(2, 5), max_workers=3)),
    run_in_thread("strand", lambda: strand.ThreadTaskrunner(held_until_forked)(5).result(30)),
]
with pylateral.task_pool(max_workers=3) as pool:
    for x in range(100):
        cube(x)  # two held, the others queued or running
    for _ in range(2 + 3 + 1):
        assert started.acquire(timeout=30), "the pools did not get busy"
    child, exit_code = fork()
    forked.set()
    for x in range(100, 110):
        cube(x)
for thread in threads:
    thread.join(30)
print(json.dumps({
    "child": child,
    "child exit": exit_code,
    "parent pylateral": sorted(pool.return_values()) == [x ** 3 for x in range(110)],
    "parent busy": busy,
    "parent next calls": [parallel.map(square, [7]), strand.ThreadTaskrunner(square)(8).result(20)],
}))
"""


@pytest.mark.parametrize("method", ["os.fork", "multiprocessing fork context"])
def test_fork_while_every_pool_is_busy(method):
    completed = run_script(FORK_CHILD, method)
    assert completed.returncode == 0, completed.stderr
    assert_no_crash(completed)
    report = report_of(completed)
    squares = [x * x for x in range(5)]
    assert report["child"] == {
        "inherited pylateral pool": "PoolForkedError",
        "pylateral": [x ** 3 for x in range(2, 7)],
        "parallel": squares,
        "parallel process": squares,
        "strand": squares,
    }
    assert report["child exit"] == 0
    assert report["parent pylateral"] is True
    assert report["parent busy"] == {"parallel": [4, 9, 16], "strand": 25}
    assert report["parent next calls"] == [[49], 64]


# -- tasks raising BaseExceptions and exceptions that cannot be printed -------

#: Runs a task raising each fault through each API and reports what the
#: caller saw, what silent mode gave, and whether a second call worked.
#: MemoryError is raised, not provoked: a failed giant allocation would also
#: make the AddressSanitizer run of the suite log a warning, which fails it.
FAULTY_TASKS_CHILD = """
import json, threading, traceback
import parallel, pylateral, strand

class UnprintableError(Exception):
    def __str__(self):
        raise RuntimeError("__str__ is broken too")

FAULTS = {
    "SystemExit": lambda: SystemExit(3),
    "KeyboardInterrupt": lambda: KeyboardInterrupt("from a task"),
    "MemoryError": lambda: MemoryError("simulated"),
    "UnprintableError": lambda: UnprintableError("unprintable"),
}

def fault_or_echo(x):
    if x in FAULTS:
        raise FAULTS[x]()
    return x

def own_args(exc):
    # On 3.10 pylateral's call-site note ends a one-str message (no notes
    # are printed there): the first line is what the task raised.
    return [repr(a.split("\\n")[0] if isinstance(a, str) else a) for a in exc.args]

def seen(exc):
    frames = [frame.name for frame in traceback.extract_tb(exc.__traceback__)]
    return {"type": type(exc).__name__, "args": own_args(exc),
            "task frame": "fault_or_echo" in frames,
            "remote traceback": "fault_or_echo" in getattr(exc.__cause__, "text", "")
                                or "fault_or_echo" in str(exc.__cause__ or "")}

def raised(call):
    try:
        call()
    except BaseException as exc:
        return seen(exc)
    return None

def silent_outcome(results):
    return [seen(r.ex) if isinstance(r, parallel.FailedTask) else r for r in results]

def pylateral_report(fault):
    task, echo = pylateral.task(fault_or_echo), pylateral.task(has_return_value=True)(fault_or_echo)
    with pylateral.task_pool(max_workers=2) as pool:
        task(fault)
        caught = [None]
        def join():
            try:
                pylateral.join()
            except BaseException as exc:
                caught[0] = exc
                raise
        report = {"raised": raised(join)}
        report["recorded"] = caught[0] is not None and pool.errors == [caught[0]]
        echo("next")  # caught inside the block: the pool runs tasks again
    report["next call"] = pool.return_values()
    return report

def parallel_report(fault, executor):
    params = ["first", fault, "last"]
    return {
        "raised": raised(lambda: parallel.map(fault_or_echo, params, executor=executor,
                                              max_workers=2)),
        "silent": silent_outcome(parallel.map(fault_or_echo, params, executor=executor,
                                              max_workers=2, silent=True)),
        "next call": parallel.map(fault_or_echo, ["next"], executor=executor, max_workers=2),
    }

def strand_report(fault):
    handle = strand.ThreadTaskrunner(fault_or_echo)(fault)
    handled = []
    with_on_error = strand.ThreadTaskrunner(fault_or_echo, on_error=handled.append)(fault)
    try:
        handle.result(30)
        caught = None
    except BaseException as exc:
        caught = exc
    return {
        "raised": seen(caught) if caught is not None else None,
        "exception() is it": caught is not None and handle.exception(30) is caught,
        "status": handle.status,
        "on_error": {"raised": raised(lambda: with_on_error.result(30)),
                     "handled": [type(exc).__name__ for exc in handled]},
        "next call": strand.ThreadTaskrunner(fault_or_echo)("next").result(30),
    }

report = {}
for fault in FAULTS:
    report[fault] = {
        "pylateral": pylateral_report(fault),
        "parallel thread": parallel_report(fault, "thread"),
        "parallel process": parallel_report(fault, "process"),
        "strand thread": strand_report(fault),
    }
parallel.shutdown()
report["threads left"] = [t.name for t in threading.enumerate()
                          if t.name.startswith(("pylateral-", "parallel-"))]
print(json.dumps(report))
"""

FAULTS = {
    "SystemExit": ["3"],
    "KeyboardInterrupt": ["'from a task'"],
    "MemoryError": ["'simulated'"],
    "UnprintableError": ["'unprintable'"],
}


@pytest.fixture(scope="module")
def faulty_tasks():
    """The report of FAULTY_TASKS_CHILD, run once for the tests below."""
    completed = run_script(FAULTY_TASKS_CHILD, timeout=2 * DEADLINE)
    assert completed.returncode == 0, completed.stderr
    assert_no_crash(completed)
    return report_of(completed)


def expected_error(fault, remote=False):
    return {"type": fault, "args": FAULTS[fault], "task frame": not remote,
            "remote traceback": remote}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_pylateral_reports_the_fault_and_runs_tasks_again(faulty_tasks, fault):
    report = faulty_tasks[fault]["pylateral"]
    assert report["raised"] == expected_error(fault)  # with the worker's traceback
    assert report["recorded"] is True
    assert report["next call"] == ["next"]


@pytest.mark.parametrize("executor", ["thread", "process"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_parallel_reports_the_fault_in_both_modes_and_runs_again(faulty_tasks, fault, executor):
    report = faulty_tasks[fault][f"parallel {executor}"]
    error = expected_error(fault, remote=executor == "process")
    assert report["raised"] == error
    assert report["silent"] == ["first", error, "last"]
    assert report["next call"] == ["next"]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_strand_thread_runner_reports_the_fault_and_runs_again(faulty_tasks, fault):
    report = faulty_tasks[fault]["strand thread"]
    assert report["raised"] == expected_error(fault)
    assert report["exception() is it"] is True
    assert report["status"] == "error"
    # on_error takes Exceptions; SystemExit and KeyboardInterrupt still
    # reach the caller through the handle.
    if fault in ("SystemExit", "KeyboardInterrupt"):
        assert report["on_error"] == {"raised": expected_error(fault), "handled": []}
    else:
        assert report["on_error"] == {"raised": None, "handled": [fault]}
    assert report["next call"] == "next"


def test_faulty_tasks_leave_no_worker_thread_behind(faulty_tasks):
    assert faulty_tasks["threads left"] == []


UNPRINTABLE = """
import time
import pylateral

class UnprintableError(Exception):
    def __str__(self):
        raise RuntimeError("__str__ is broken too")

@pylateral.task
def fails():
    raise UnprintableError("unprintable")

@pylateral.task
def sleeps_forever():
    while True:
        time.sleep(0.005)
"""


def test_unprintable_error_nobody_collected_is_printed_at_exit():
    completed = run_script(UNPRINTABLE + """
pool = pylateral.task_pool(max_workers=2)
pool.__enter__()  # never left: the error is never raised in the main thread
sleeps_forever()
fails()
while not pool.errors:
    time.sleep(0.005)
print("exiting")
""")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "exiting\n"
    assert_no_crash(completed, traceback_expected=True)
    assert "Exception ignored in: <_lateral.Pool" in completed.stderr
    assert ", in fails\n" in completed.stderr  # the task's frame
    assert "UnprintableError: <exception str() failed>" in completed.stderr


def test_unprintable_error_leaving_the_pool_is_reported_with_the_task_traceback():
    completed = run_script(UNPRINTABLE + """
with pylateral.task_pool(max_workers=2):
    sleeps_forever()
    fails()
""")
    assert completed.returncode == 1, completed.stderr
    assert_no_crash(completed, traceback_expected=True)
    assert ", in fails\n" in completed.stderr  # the task's frame
    lines = completed.stderr.rstrip().splitlines()
    if sys.version_info >= (3, 11):  # the call-site note follows; 3.10 prints no notes
        assert lines.pop().startswith("task fails(...) queued at <string>:")
    assert lines[-1].endswith("UnprintableError: <exception str() failed>")


# -- worker processes killed with SIGKILL mid-task ---------------------------

#: Each call writes its process id to ``<dir>/<name>.pid`` and then waits for
#: ``<dir>/release``; the parent kills one of them mid-call.
KILLED_WORKER_PRELUDE = """
import json, os, signal, sys, threading, time
import parallel, strand

DIR = sys.argv[1]

def wait_for(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(path + " did not appear")
        time.sleep(0.005)

def announce_then_wait(name):
    with open(os.path.join(DIR, name + ".tmp"), "w") as f:
        f.write(str(os.getpid()))
    os.rename(os.path.join(DIR, name + ".tmp"), os.path.join(DIR, name + ".pid"))
    wait_for(os.path.join(DIR, "release"))
    return name

def pid_of(name):
    wait_for(os.path.join(DIR, name + ".pid"))
    with open(os.path.join(DIR, name + ".pid")) as f:
        return int(f.read())

def kill_when_running(name):
    threading.Thread(target=lambda: os.kill(pid_of(name), signal.SIGKILL)).start()

def error_of(call):
    start = time.monotonic()
    try:
        call()
    except Exception as exc:
        return {"type": type(exc).__name__, "message": str(exc),
                "bases": [c.__name__ for c in type(exc).__mro__],
                "seconds": time.monotonic() - start}
    return None
"""


def test_parallel_process_worker_killed_mid_call(tmp_path):
    completed = run_script(KILLED_WORKER_PRELUDE + """
report = {}
kill_when_running("map-0")
report["map"] = error_of(lambda: parallel.process.map(
    announce_then_wait, [f"map-{i}" for i in range(4)], max_workers=2))

def silent_async():
    with parallel.process.async_map(announce_then_wait, [f"silent-{i}" for i in range(4)],
                                    max_workers=2, silent=True) as execution:
        kill_when_running("silent-1")
        execution.results(timeout=30)
report["silent async_map"] = error_of(silent_async)
report["next call"] = parallel.process.map(abs, [-1, -2], max_workers=2)
open(os.path.join(DIR, "release"), "w").close()
print(json.dumps(report))
""", str(tmp_path))
    assert completed.returncode == 0, completed.stderr
    assert_no_crash(completed)
    report = report_of(completed)
    for call in ("map", "silent async_map"):
        error = report[call]
        assert error is not None, f"{call}: no error although a worker was killed"
        assert error["type"] == "WorkerProcessError"
        assert "BrokenProcessPool" in error["bases"]
        assert "worker process died" in error["message"]
        assert error["seconds"] < PATIENCE  # not a timeout: the death was noticed
    assert report["next call"] == [1, 2]


def test_next_process_call_works_while_a_broken_async_execution_is_still_referenced(tmp_path):
    completed = run_script(KILLED_WORKER_PRELUDE + """
execution = parallel.process.async_map(announce_then_wait, ["a", "b"], max_workers=2)
kill_when_running("a")
report = {"results": error_of(lambda: execution.results(timeout=30))}
report["next call"] = error_of(lambda: parallel.process.map(abs, [-1], max_workers=2))
open(os.path.join(DIR, "release"), "w").close()
print(json.dumps(report))
""", str(tmp_path))
    assert completed.returncode == 0, completed.stderr
    report = report_of(completed)
    assert report["results"]["type"] == "WorkerProcessError"
    assert report["next call"] is None


def test_strand_process_killed_mid_call_fails_that_call_only(tmp_path):
    completed = run_script(KILLED_WORKER_PRELUDE + """
runner = strand.MultiprocessTaskrunner(announce_then_wait)
victim, survivor = runner("victim"), runner("survivor")
pid_of("survivor")
kill_when_running("victim")
report = {"victim": error_of(lambda: victim.result(30)), "victim status": victim.status,
          "survivor status": survivor.status}
open(os.path.join(DIR, "release"), "w").close()
report["survivor"] = survivor.result(30)
report["next call"] = runner("next").result(30)
print(json.dumps(report))
""", str(tmp_path))
    assert completed.returncode == 0, completed.stderr
    assert_no_crash(completed)
    report = report_of(completed)
    error = report["victim"]
    assert error is not None and error["type"] == "TaskProcessError"
    assert error["message"] == ("the process running announce_then_wait() was killed by "
                                "signal SIGKILL before sending its result")
    assert error["seconds"] < PATIENCE
    assert report["victim status"] == "error"
    assert report["survivor status"] == "running"
    assert report["survivor"] == "survivor"
    assert report["next call"] == "next"
