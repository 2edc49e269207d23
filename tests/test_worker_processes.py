"""Processes started from tasks behave like processes the program starts
itself (issue 9, part 2).

An idle worker blocks signals, so that Ctrl-C reaches the main thread; a
task runs with the signal mask the program had when ``_lateral`` was
imported, so that the processes it starts get that mask too.  With the
workers' all-blocked mask a child ignored SIGTERM and SIGINT:
``Popen.terminate()``, ``multiprocessing.Pool.terminate()`` (so a
``parallel.process.map`` timeout), strand's ``ProcessTaskHandle.terminate()``
and Ctrl-C in a terminal then did nothing or hung.

For every way of starting a process -- ``subprocess.Popen`` (vfork in
``_posixsubprocess``, which runs no atfork handler), ``Popen`` with a
``preexec_fn`` (fork), ``os.fork``, ``os.posix_spawn`` and multiprocessing's
fork, forkserver and spawn contexts -- and from every kind of task (a
pylateral task, a parallel thread-map item, a strand ThreadTaskrunner call),
the child's blocked signals (``SigBlk`` in ``/proc/<pid>/status``) must be
those of the same child started from the main thread, and SIGTERM must kill
it.  The scenarios whose start-up state is per process (a forkserver, a mask
set before lateral is imported, Ctrl-C) run in a fresh interpreter with a
deadline.
"""
import json
import multiprocessing
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

import parallel
import pylateral
import strand
from common_support import PATIENCE, process_ended
from pylateral_support import child_env, run_child
from pylateral_support import isolated_pylateral  # noqa: F401  (autouse fixture)

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not sys.platform.startswith("linux"),
                       reason="reads the signal masks in /proc/<pid>/status"),
    # 3.12+ warns about fork() in a process with threads: forking from a
    # worker thread is the point here.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]

SLEEP = shutil.which("sleep") or "/bin/sleep"

#: How long a child lives if nothing kills it (every test kills its own).
CHILD_SECONDS = 120

#: Seconds a fresh interpreter may take; a healthy one needs one or two.
DEADLINE = 60

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


# -- the ways of starting a process ------------------------------------------

class Child:
    """A started process: its ``pid``, ``wait(timeout)`` for its exit status
    (``-N`` if signal N killed it, None if it still runs) and ``kill()``."""

    def __init__(self, pid, wait, kill):
        self.pid = pid
        self.wait = wait
        self.kill = kill


def _popen_child(process):
    def wait(timeout):
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill():
        process.kill()
        process.wait()
    return Child(process.pid, wait, kill)


def _pid_child(pid):
    def wait(timeout):
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)

    def kill():
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return Child(pid, wait, kill)


def _mp_child(process):
    def wait(timeout):
        process.join(timeout)
        return process.exitcode

    def kill():
        process.kill()
        process.join()
    return Child(process.pid, wait, kill)


def _no_op():
    pass


def start_popen():
    return _popen_child(subprocess.Popen([SLEEP, str(CHILD_SECONDS)]))


def start_popen_preexec_fn():
    return _popen_child(subprocess.Popen([SLEEP, str(CHILD_SECONDS)], preexec_fn=_no_op))


def start_os_fork():
    pid = os.fork()
    if pid == 0:  # the child never returns into the caller's code
        try:
            time.sleep(CHILD_SECONDS)
        finally:
            os._exit(0)
    return _pid_child(pid)


def start_posix_spawn():
    return _pid_child(os.posix_spawn(SLEEP, [SLEEP, str(CHILD_SECONDS)], os.environ))


def _multiprocessing_starter(method):
    def start():
        context = multiprocessing.get_context(method)
        process = context.Process(target=time.sleep, args=(CHILD_SECONDS,), daemon=True)
        process.start()
        return _mp_child(process)
    return start


STARTERS = {
    "Popen": start_popen,
    "Popen preexec_fn": start_popen_preexec_fn,
    "os.fork": start_os_fork,
    "os.posix_spawn": start_posix_spawn,
    "mp fork": _multiprocessing_starter("fork"),
    "mp forkserver": _multiprocessing_starter("forkserver"),
    "mp spawn": _multiprocessing_starter("spawn"),
}

#: The forkserver is started once per process, by its first user: whether a
#: task or the main thread started it decides its children's mask, so it is
#: tested in fresh interpreters only (where a task starts it).
IN_PROCESS_METHODS = [method for method in STARTERS if method != "mp forkserver"]


# -- where the process is started from ----------------------------------------

def in_main_thread(fn):
    return threading.current_thread().name, fn()


def in_pylateral_task(fn):
    ran = []

    @pylateral.task
    def task():
        ran.append((threading.current_thread().name, fn()))

    with pylateral.task_pool(max_workers=2):
        task()
    return ran[0]


def in_parallel_item(fn):
    [ran] = parallel.thread.map(lambda _: (threading.current_thread().name, fn()), [0],
                                max_workers=2)
    return ran


def in_strand_call(fn):
    return strand.ThreadTaskrunner(lambda: (threading.current_thread().name, fn()))().result(
        PATIENCE)


#: runner -> (how it runs a function, the prefix of its threads' names).
RUNNERS = {
    "main": (in_main_thread, "MainThread"),
    "pylateral": (in_pylateral_task, "pylateral-"),
    "parallel": (in_parallel_item, "parallel-"),
    "strand": (in_strand_call, "strand-"),
}
TASK_RUNNERS = ["pylateral", "parallel", "strand"]


def run_in(runner, fn, cleanup):
    """``fn()`` run by ``runner``; checks it ran in one of the runner's
    threads (else ``cleanup(result)`` and fail)."""
    run, prefix = RUNNERS[runner]
    thread, result = run(fn)
    if not thread.startswith(prefix):
        cleanup(result)
        pytest.fail(f"{runner} ran the function in thread {thread!r}, not a {prefix}* one")
    return result


# -- masks ----------------------------------------------------------------------

def signal_names(numbers):
    names = []
    for number in sorted(numbers):
        try:
            names.append(signal.Signals(number).name)
        except ValueError:
            names.append(str(number))
    return names


#: Every signal that can be blocked (all but SIGKILL and SIGSTOP).  Newer
#: glibc (2.43 in Debian sid) blocks them all inside fork() until the child
#: has run its atfork handlers: a child read that early seems to block all.
EVERY_BLOCKABLE_SIGNAL = ((1 << 64) - 1) & ~(1 << (signal.SIGKILL - 1)) & ~(1 << (signal.SIGSTOP - 1))


def blocked_signals(pid):
    """The names of the signals the process ``pid``'s main thread blocks,
    once it is past fork()'s moment of blocking everything (a child that
    truly blocks everything is reported so after PATIENCE / 10 s)."""
    deadline = time.monotonic() + PATIENCE / 10
    bits = _sigblk(pid)
    while bits == EVERY_BLOCKABLE_SIGNAL and time.monotonic() < deadline:
        time.sleep(0.005)
        bits = _sigblk(pid)
    return signal_names(n for n in range(1, bits.bit_length() + 1) if bits >> (n - 1) & 1)


def _sigblk(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("SigBlk:"):
                return int(line.split()[1], 16)
    raise AssertionError(f"no SigBlk line in /proc/{pid}/status")


def program_mask():
    """The signals the calling (main) thread blocks."""
    return signal_names(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))


def probe(method, runner):
    """Start a child by ``method`` from ``runner``, then SIGTERM it: its
    blocked signals and exit status (None: SIGTERM did not end it)."""
    child = run_in(runner, STARTERS[method], lambda child: child.kill())
    status = None
    try:
        blocked = blocked_signals(child.pid)
        os.kill(child.pid, signal.SIGTERM)
        status = child.wait(PATIENCE)
    finally:
        if status is None:
            child.kill()
    return {"blocked": blocked, "status": status}


_from_main_thread = {}


def from_main_thread(method):
    """``probe(method, "main")``, once per method."""
    if method not in _from_main_thread:
        _from_main_thread[method] = probe(method, "main")
    return _from_main_thread[method]


#: A fresh interpreter blocks ``block`` (signal numbers), imports lateral
#: (through this module), runs the probes and prints them with its mask.
PROBE_SCRIPT = """
import json, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {block!r})
sys.path.insert(0, {tests!r})
import test_worker_processes as t
probes = [t.probe(method, runner) for method, runner in {pairs!r}]
print(json.dumps({{"program": t.program_mask(), "probes": probes}}))
"""


def probe_in_fresh_interpreter(pairs, block=()):
    code = PROBE_SCRIPT.format(block=[int(s) for s in block], tests=TESTS_DIR, pairs=list(pairs))
    try:
        completed = run_child(code, timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        # A child that ignores SIGTERM costs PATIENCE s; one whose
        # forkserver ignores SIGCHLD is never reported as ended.
        pytest.fail(f"the probes {pairs} did not end within {DEADLINE} s")
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    return report["program"], dict(zip(pairs, report["probes"]))


# -- the children's masks -------------------------------------------------------

@pytest.mark.parametrize("runner", TASK_RUNNERS)
@pytest.mark.parametrize("method", IN_PROCESS_METHODS)
def test_a_child_started_in_a_task_has_the_programs_mask_and_dies_on_sigterm(method, runner):
    reference = from_main_thread(method)
    assert reference == {"blocked": program_mask(), "status": -signal.SIGTERM}
    assert probe(method, runner) == reference


@pytest.mark.parametrize("runner", TASK_RUNNERS)
def test_children_of_tasks_keep_the_signals_the_program_blocked_before_importing_lateral(runner):
    # The program's mask, not an empty one.  The task's children come first,
    # so the forkserver is started by the task; the main thread's use it.
    pairs = [(method, runner) for method in STARTERS] + [(method, "main") for method in STARTERS]
    program, probes = probe_in_fresh_interpreter(pairs, block=[signal.SIGUSR1])
    assert program == ["SIGUSR1"]
    expected = {"blocked": ["SIGUSR1"], "status": -signal.SIGTERM}
    assert probes == {pair: expected for pair in pairs}


# -- what the mask broke --------------------------------------------------------

#: A fresh interpreter whose first process pool is opened by a task (argv[1]
#: is the runner) calling parallel.process.map with a 1 s timeout.
PROCESS_MAP_TIMEOUT_SCRIPT = """
import json, multiprocessing, sys, threading, time
import parallel, pylateral, strand
from parallel.exceptions import TimeoutException

def call():
    start = time.monotonic()
    try:
        parallel.process.map(time.sleep, [{seconds}, {seconds}], max_workers=2, timeout=1)
        outcome = "returned"
    except TimeoutException:
        outcome = "TimeoutException"
    return {{"outcome": outcome, "seconds": time.monotonic() - start,
             "thread": threading.current_thread().name}}

runner = sys.argv[1]
if runner == "pylateral":
    ran = []
    @pylateral.task
    def task():
        ran.append(call())
    with pylateral.task_pool(max_workers=2):
        task()
    report = ran[0]
elif runner == "parallel":
    report = parallel.thread.map(lambda _: call(), [0], max_workers=2)[0]
else:
    report = strand.ThreadTaskrunner(call)().result()
# The timed-out call's pool is terminated once nobody uses it: no worker
# process is left.
report["processes left"] = len(multiprocessing.active_children())
print(json.dumps(report))
"""


@pytest.mark.parametrize("runner", TASK_RUNNERS)
def test_process_map_timeout_inside_a_task_raises_instead_of_hanging(runner):
    code = PROCESS_MAP_TIMEOUT_SCRIPT.format(seconds=CHILD_SECONDS)
    try:
        completed = subprocess.run([sys.executable, "-c", code, runner], capture_output=True,
                                   text=True, timeout=DEADLINE, env=child_env())
    except subprocess.TimeoutExpired:
        pytest.fail(f"parallel.process.map(timeout=1) in a {runner} task hung "
                    f"(no exit within {DEADLINE} s)")
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["outcome"] == "TimeoutException"
    assert report["thread"].startswith(RUNNERS[runner][1])
    assert report["seconds"] < PATIENCE
    assert report["processes left"] == 0


@pytest.mark.parametrize("runner", TASK_RUNNERS)
@pytest.mark.parametrize("context", ["fork", "forkserver", "spawn"])
def test_strand_process_handle_started_in_a_task_can_be_terminated(context, runner):
    def start_and_terminate():
        handle = strand.MultiprocessTaskrunner(time.sleep, mp_context=context)(CHILD_SECONDS)
        try:
            blocked = blocked_signals(handle.pid)
        finally:
            handle.terminate()
        return handle, blocked

    handle, blocked = run_in(runner, start_and_terminate, lambda ran: ran[0].process.kill())
    try:
        assert handle.join(PATIENCE), "terminate() did not stop the child"
    finally:
        handle.process.kill()  # nothing if it is gone
    assert blocked == program_mask()
    assert handle.process.exitcode == -signal.SIGTERM
    error = handle.exception(0)
    assert isinstance(error, strand.TaskProcessError)
    assert "killed by signal SIGTERM" in str(error)


# -- Ctrl-C ----------------------------------------------------------------------

#: Two tasks loop, two run a subprocess; once all four run (and the main
#: thread sits in the pool's exit or join), the script prints the
#: subprocesses' pids.  ``blocking``: the tasks wait for their subprocess in
#: waitpid(); else they poll it from Python.
CTRL_C_SCRIPT = """
import json, subprocess, threading, time
import pylateral

started = threading.Semaphore(0)
pids = []

@pylateral.task
def loop():
    started.release()
    while True:
        time.sleep(0.005)

@pylateral.task
def run_subprocess():
    # Not on the script's pipes, which the test reads to their end.
    process = subprocess.Popen([{sleep!r}, "{seconds}"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    pids.append(process.pid)
    started.release()
    if {blocking}:
        process.wait()
    else:
        while process.poll() is None:
            time.sleep(0.005)

def announce():
    for _ in range(4):
        started.acquire()
    time.sleep(0.2)  # let the main thread settle into its wait
    print(json.dumps(pids), flush=True)

threading.Thread(target=announce, daemon=True).start()
with pylateral.task_pool(max_workers=4):
    loop()
    loop()
    run_subprocess()
    run_subprocess()
    {wait}
print("the wait was not interrupted", flush=True)
"""


def read_line(process, timeout):
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else b""
    if not line:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"the script did not get its tasks running:\n{err.decode()}")
    return line


def running_sleep(pid):
    """True if ``pid`` is a ``sleep`` that has not ended (zombies have)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            if os.path.basename(cmdline.read().split(b"\0")[0]) != b"sleep":
                return False
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return not process_ended(pid)


@pytest.mark.parametrize("wait", ["pool exit", "join()"])
@pytest.mark.parametrize("ctrl_c", ["to the process", "to the process group"])
def test_ctrl_c_interrupts_the_pools_wait_while_tasks_run_subprocesses(ctrl_c, wait):
    # To the process, as other tests do: the tasks poll their subprocess and
    # are halted at their next line.  To the process group, as a terminal's
    # Ctrl-C: the subprocesses get SIGINT too and must die of it, since the
    # tasks wait for them in waitpid(), a C call that a halt lets finish.
    group = ctrl_c == "to the process group"
    code = CTRL_C_SCRIPT.format(sleep=SLEEP, seconds=CHILD_SECONDS, blocking=group,
                                wait="pylateral.join()" if wait == "join()" else "pass")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=child_env(), start_new_session=True)
    pids = []
    try:
        pids = json.loads(read_line(process, DEADLINE))
        if group:
            os.killpg(process.pid, signal.SIGINT)
        else:
            os.kill(process.pid, signal.SIGINT)
        try:
            out, err = process.communicate(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"Ctrl-C {ctrl_c} did not end the program within {PATIENCE} s")
        still_running = [pid for pid in pids if running_sleep(pid)]
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        for pid in pids:  # the subprocesses a halted task left behind
            if running_sleep(pid):
                os.kill(pid, signal.SIGKILL)
    assert process.returncode == -signal.SIGINT, err.decode()
    assert err.decode().rstrip().endswith("KeyboardInterrupt")
    assert b"not interrupted" not in out
    if group:
        assert still_running == []
