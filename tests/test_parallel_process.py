"""parallel on the process executor: same results as threads, pickling of
what plain pickle cannot, exceptions across processes, crashes, timeouts."""
import concurrent.futures
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import parallel
from parallel_support import (
    PATIENCE,
    CustomError,
    StubbornError,
    add,
    collect_garbage,
    decorated_pid,
    decorated_square,
    describe,
    fail_on,
    pid_of,
    process_ended,
    square,
    wait_until,
)

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture(scope="module", autouse=True)
def close_process_pools():
    yield
    parallel.shutdown()


def wait_for_file(path, timeout=PATIENCE):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def meet(me, other):
    """Create file `me`, then wait for file `other`: both calls must be
    running at the same time for either to return True."""
    open(me, "w").close()
    return wait_for_file(other), os.getpid()


def crash(x):
    if x == 3:
        os._exit(13)
    return x


def raise_custom(x):
    raise CustomError(f"custom {x}", code=x)


def raise_stubborn(x):
    raise StubbornError(x, "b")


def exit_call(x):
    if x == 1:
        raise SystemExit(5)
    return x


def return_lock(_):
    return threading.Lock()


def threads_inside(n):
    """parallel.map on threads, inside a worker process forked from a parent
    whose thread pools are open."""
    return sum(parallel.map(square, range(n))), os.getpid()


def sleep_then_touch(seconds, path):
    time.sleep(seconds)
    open(path, "w").close()
    return path


# -- results -------------------------------------------------------------------

PARAMS = [1, (2, 3), ("a", {"k": 1}), {"k": 2, "j": 0}, parallel.arg({"d": 1}, k=4), ()]


@pytest.mark.parametrize("spelling", [parallel.PROCESS_EXECUTOR, "process"])
def test_process_results_match_threads_for_every_parameter_form(spelling):
    expected = parallel.map(describe, PARAMS, extras={"e": 9})
    assert parallel.map(describe, PARAMS, extras={"e": 9}, executor=spelling) == expected
    named = {f"k{i}": p for i, p in enumerate(PARAMS)}
    assert parallel.process.map(describe, named) == parallel.map(describe, named)
    assert (parallel.process.map(describe, PARAMS, unpack_arguments=False)
            == parallel.map(describe, PARAMS, unpack_arguments=False))


def test_calls_run_in_other_processes_at_the_same_time(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    results = parallel.process.map(meet, [(a, b), (b, a)], max_workers=2)
    (met_a, pid_a), (met_b, pid_b) = results
    assert met_a and met_b
    assert pid_a != pid_b and os.getpid() not in (pid_a, pid_b)


def test_order_is_kept_across_many_chunks():
    items = list(range(5000))
    assert parallel.process.map(square, items) == [i * i for i in items]
    named = {str(i): i for i in range(300)}
    assert parallel.process.map(square, named) == {str(i): i * i for i in range(300)}


def test_lambdas_closures_and_local_functions_are_sent_with_cloudpickle():
    offset = 100

    def local(x):
        return x + offset

    assert parallel.process.map(lambda x: x * 3, [1, 2]) == [3, 6]
    assert parallel.process.map(local, [1, 2]) == [101, 102]
    # Lambdas as parameters and as return values cross too.
    assert parallel.process.map(lambda f: f(2), [lambda x: x + 1]) == [3]
    assert parallel.process.map(lambda x: (lambda: x), [5])[0]() == 5


def test_decorated_functions_run_on_processes():
    assert decorated_square.process.map([1, 2, 3]) == [1, 4, 9]
    assert parallel.process.map(decorated_square, [4]) == [16]
    assert parallel.par([decorated_square.future(5)], executor="process") == [25]
    pids = decorated_pid.map(range(4))  # the decorator chose processes
    assert os.getpid() not in pids
    # A decorated function pickles by reference with plain pickle too.
    assert pickle.loads(pickle.dumps(decorated_square)) is decorated_square

    @parallel.decorate
    def local_decorated(x):
        return -x

    assert local_decorated.process.map([1, 2]) == [-1, -2]
    assert local_decorated.process.async_map([3]).results() == [-3]


def test_par_on_processes():
    results = parallel.process.par({
        "future": parallel.future(describe, 1, k=2),
        "tuple": (add, 1, 2),
        "lambda": lambda: os.getpid(),
    }, extras=None)
    assert results["future"] == ((1,), [("k", 2)]) and results["tuple"] == 3
    assert results["lambda"] != os.getpid()
    assert parallel.process.async_par([(add, "a", "b")]).results() == ["ab"]


def test_thread_map_inside_a_worker_process():
    parallel.map(square, range(10))  # the parent has open thread pools
    (total, pid), = parallel.process.map(threads_inside, [10])
    assert total == sum(i * i for i in range(10)) and pid != os.getpid()


# -- errors --------------------------------------------------------------------

def test_exception_keeps_type_args_attributes_and_remote_traceback():
    with pytest.raises(CustomError) as info:
        parallel.process.map(raise_custom, [7])
    assert info.value.args == ("custom 7", 7) and info.value.code == 7
    cause = info.value.__cause__
    assert isinstance(cause, parallel.exceptions.RemoteTraceback)
    assert "raise_custom" in str(cause) and "CustomError" in str(cause)


def test_exception_that_cannot_be_rebuilt_becomes_remote_error():
    results = parallel.process.map(raise_stubborn, [1], silent=True)
    error = results[0].ex
    assert isinstance(error, parallel.exceptions.RemoteError)
    assert error.type_name.endswith("StubbornError") and error.message == "1-b"
    assert "raise_stubborn" in str(error.__cause__)


def test_first_error_in_input_order_across_chunks():
    items = list(range(2000))
    with pytest.raises(ValueError, match="(?m)bad item 700$"):  # a note follows
        parallel.process.map(fail_on, items, extras={"bad": {700, 1500, 1999}})


def test_silent_failures_land_at_their_index_across_chunks():
    bad = {3, 999, 1000, 1998}
    results = parallel.process.map(fail_on, {i: i for i in range(2000)},
                                   extras={"bad": bad}, silent=True)
    assert sorted(results.failed) == sorted(bad)
    assert results.failed[999] == parallel.FailedTask(
        params=(999,), kwargs={"bad": bad}, ex=ValueError("bad item 999"))
    assert len(results.succeeded) == 2000 - len(bad)


def test_system_exit_in_a_call_is_a_failure_not_a_dead_worker():
    results = parallel.process.map(exit_call, [0, 1, 2], silent=True)
    assert results.replace_failed(None) == [0, None, 2]
    assert isinstance(results[1].ex, SystemExit)


def test_unpicklable_argument_is_a_clear_error():
    start = time.monotonic()
    with pytest.raises(parallel.exceptions.SerializationError, match="parameter 2"):
        parallel.process.map(pid_of, [1, 2, threading.Lock()])
    with pytest.raises(pickle.PicklingError, match="parameter 'lock'"):
        parallel.process.map(pid_of, {"ok": 1, "lock": threading.Lock()})
    assert time.monotonic() - start < PATIENCE


def test_unpicklable_function_or_extras_is_a_clear_error():
    lock = threading.Lock()
    with pytest.raises(parallel.exceptions.SerializationError, match="function"):
        parallel.process.map(lambda x: lock, [1])
    with pytest.raises(parallel.exceptions.SerializationError, match="extras"):
        parallel.process.map(describe, [1], extras={"lock": lock})


def test_unpicklable_result_is_reported_for_its_call():
    results = parallel.process.map(return_lock, [1, 2], silent=True)
    assert all(isinstance(f.ex, parallel.exceptions.SerializationError)
               for f in results.failed)
    with pytest.raises(parallel.exceptions.SerializationError, match="return value"):
        parallel.process.map(return_lock, [1])


def test_crashed_worker_is_a_clear_error_and_the_next_call_works():
    start = time.monotonic()
    with pytest.raises(parallel.exceptions.WorkerProcessError, match="died") as info:
        parallel.process.map(crash, range(8), max_workers=2, timeout=PATIENCE)
    assert isinstance(info.value, concurrent.futures.process.BrokenProcessPool)
    assert time.monotonic() - start < PATIENCE
    # Silent mode does not hide a crash either.
    with pytest.raises(parallel.exceptions.WorkerProcessError):
        parallel.process.map(crash, [3], max_workers=2, silent=True, timeout=PATIENCE)
    assert parallel.process.map(square, [1, 2], max_workers=2) == [1, 4]


def test_timeout_on_processes_and_the_next_call_is_not_blocked():
    with pytest.raises(parallel.TimeoutException):
        parallel.process.map(time.sleep, [3] * 4, max_workers=2, timeout=0.3)
    start = time.monotonic()
    # The timed-out pool was discarded: this call does not wait for it.
    assert parallel.process.map(square, [3], max_workers=2) == [9]
    assert time.monotonic() - start < 2.5


def test_timed_out_chunks_are_terminated(tmp_path):
    marker = str(tmp_path / "late")
    with pytest.raises(parallel.TimeoutException):
        parallel.process.map(sleep_then_touch, [(1.0, marker)], max_workers=2, timeout=0.2)
    time.sleep(1.5)
    assert not os.path.exists(marker)


def test_timeout_of_one_call_does_not_break_another_running_call(tmp_path):
    results = {}

    def other_call():
        results["other"] = parallel.process.map(
            sleep_then_touch, [(0.8, str(tmp_path / "a")), (0.8, str(tmp_path / "b"))],
            max_workers=3)

    caller = threading.Thread(target=other_call)
    parallel.process.map(square, [1], max_workers=3)  # the shared pool is up
    caller.start()
    time.sleep(0.2)
    with pytest.raises(parallel.TimeoutException):
        parallel.process.map(time.sleep, [5], max_workers=3, timeout=0.1)
    caller.join(PATIENCE)
    assert results["other"] == [str(tmp_path / "a"), str(tmp_path / "b")]


def fail_fast_or_sleep(x, path):
    if x == 0:
        raise LookupError("fails first")
    return sleep_then_touch(1.0, path)


def test_error_stops_the_chunks_still_running(tmp_path):
    marker = str(tmp_path / "late")
    with pytest.raises(LookupError):
        parallel.process.map(fail_fast_or_sleep, [(0, marker), (1, marker)], max_workers=2)
    time.sleep(1.5)
    assert not os.path.exists(marker)
    assert parallel.process.map(square, [2], max_workers=2) == [4]


def test_shutdown_closes_each_worker_pipe_once(monkeypatch):
    # parallel.shutdown() and the pool's results thread (once the workers
    # exit) both closed a worker's task pipe.  os.close lets go of the GIL,
    # so both could close one descriptor: OSError EBADF out of shutdown(),
    # or an unrelated file's descriptor closed if it was reused meanwhile.
    # A slow close widens that window.
    import multiprocessing.connection
    original = multiprocessing.connection.Connection._close

    def slow_close(self, *args):
        time.sleep(0.02)
        original(self, *args)

    monkeypatch.setattr(multiprocessing.connection.Connection, "_close", slow_close)
    thread_errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: thread_errors.append(args))
    for _ in range(3):
        assert parallel.process.map(square, range(4), max_workers=2) == [0, 1, 4, 9]
        parallel.shutdown()
    assert thread_errors == []


def test_a_pool_whose_idle_worker_died_is_replaced_by_the_next_call():
    parallel.process.map(square, range(2), max_workers=2)
    from parallel import _processes
    executor = _processes._pools[2].executor
    os.kill(executor._workers[0].process.pid, signal.SIGKILL)
    assert wait_until(lambda: executor.broken)
    # That death broke no call: the next one runs on a new pool.
    assert parallel.process.map(square, range(4), max_workers=2) == [0, 1, 4, 9]
    assert _processes._pools[2].executor is not executor


def test_collecting_a_dropped_call_in_a_forked_child_leaves_the_parents_pool_alone():
    # A call dropped unread, in a reference cycle the parent has not
    # collected yet, is copied into every process forked meanwhile (here a
    # second pool's workers).  Its finalizer, run by the child's collector,
    # must not stop the parent's workers through the pipes the child copied.
    import gc
    from parallel import _processes
    gc.disable()
    try:
        execution = parallel.process.async_map(square, range(4), max_workers=2)
        assert wait_until(execution.done)
        box = [execution]
        box.append(box)
        del execution, box
        executor = _processes._pools[2].executor
        assert parallel.process.map(collect_garbage, range(3), max_workers=3) == [0, 0, 0]
        time.sleep(0.5)
        assert not executor.broken
        assert parallel.process.map(square, range(4), max_workers=2) == [0, 1, 4, 9]
    finally:
        gc.enable()


def test_collecting_a_dropped_call_while_a_pool_starts_does_not_deadlock():
    # The finalizer of a call dropped unread gives its pool back; the
    # collector may run it while this thread holds the lock that takes (a
    # pool being built allocates a lot).  Run apart: a deadlock hangs.
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
        import gc, time, parallel
        from parallel import _processes
        from parallel_support import square
        class CollectingPool(_processes.ProcessPool):
            def __init__(self, n):
                gc.collect()  # a collection at one of the allocations
                super().__init__(n)
        gc.disable()
        execution = parallel.process.async_map(square, range(4), max_workers=2)
        while not execution.done():
            time.sleep(0.01)
        box = [execution]; box.append(box); del execution, box
        _processes.ProcessPool = CollectingPool
        print(parallel.process.map(square, range(4), max_workers=3))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 1, 4, 9]"


def test_parallel_shutdown_does_not_fail_a_call_running_in_another_thread():
    errors, calls, stop = [], [0], threading.Event()

    def caller():
        while not stop.is_set():
            try:
                parallel.process.map(square, range(4), max_workers=2)
                calls[0] += 1
            except Exception as exc:
                errors.append(exc)

    thread = threading.Thread(target=caller)
    thread.start()
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not errors:
            parallel.shutdown()
            time.sleep(0.001)
    finally:
        stop.set()
        thread.join()
    assert errors == [] and calls[0] > 0


def test_a_pool_that_cannot_start_evicts_no_cached_pool(monkeypatch):
    from parallel import _processes
    parallel.process.map(square, range(2), max_workers=1)
    parallel.process.map(square, range(2), max_workers=2)  # the table is full
    cached = dict(_processes._pools)
    assert sorted(cached) == [1, 2]

    def no_room(max_workers):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(_processes, "ProcessPool", no_room)
    with pytest.raises(OSError):
        parallel.process.map(square, range(3), max_workers=3)
    monkeypatch.undo()
    # Still cached, so that parallel.shutdown() stops their workers.
    assert _processes._pools == cached
    workers = [w.process for pool in cached.values() for w in pool.executor._workers]
    parallel.shutdown()
    assert all(not worker.is_alive() for worker in workers)


def test_an_interrupt_while_a_chunk_is_sent_leaves_no_worker_waiting_for_ever():
    # A signal handler that raises while the parent writes a chunk (a
    # KeyboardInterrupt for the parent only: kill -INT, a SIGALRM handler)
    # leaves the worker with half a message.
    def interrupt_while_sending(signum, frame):
        while frame is not None:
            if frame.f_code.co_name == "_send_bytes":
                raise KeyboardInterrupt
            frame = frame.f_back
        signal.setitimer(signal.ITIMER_REAL, 0.001)

    parallel.process.map(len, [b"x"], max_workers=1)
    previous = signal.signal(signal.SIGALRM, interrupt_while_sending)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.001)
        with pytest.raises(KeyboardInterrupt):
            parallel.process.map(len, [b"x" * (64 << 20)], max_workers=1)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert parallel.process.map(len, [b"yy"], max_workers=1, timeout=PATIENCE) == [2]
    closing = threading.Thread(target=parallel.shutdown, daemon=True)
    closing.start()
    closing.join(PATIENCE)
    assert not closing.is_alive()


def test_an_interrupted_parallel_shutdown_leaves_no_pool_running(monkeypatch):
    from parallel import _processes
    parallel.process.map(square, range(2), max_workers=1)
    parallel.process.map(square, range(2), max_workers=2)
    executors = [pool.executor for pool in _processes._pools.values()]

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(executors[0], "_join_results_thread", interrupted)
    with pytest.raises(KeyboardInterrupt):
        parallel.shutdown()  # interrupted while it waits for the first pool
    monkeypatch.undo()
    processes = [worker.process for executor in executors for worker in executor._workers]
    assert wait_until(lambda: not any(process.is_alive() for process in processes))


def test_chunks_get_larger_for_cheap_calls_and_smaller_for_slow_ones():
    from parallel._chunks import BALANCE_SECONDS, MAX_CHUNKS_PER_WORKER, chunk_ranges
    assert len(chunk_ranges(20000, 2)) == 8                   # cost unknown
    assert len(chunk_ranges(20000, 2, 1e-7)) == 2             # cheap: one per worker
    assert len(chunk_ranges(20000, 2, 2e-6)) == 8             # costly: balance
    # Slow: no chunk holds more than BALANCE_SECONDS of work (one call at least)...
    for n, seconds in ((64, 0.02), (64, 0.014), (5, 1.0)):
        ranges = chunk_ranges(n, 2, seconds)
        assert max(end - start for start, end in ranges) == \
            max(1, int(BALANCE_SECONDS // seconds))
    # ...but a remembered cost never makes more than MAX_CHUNKS_PER_WORKER:
    # this call's items may be cheaper than the last call's.
    for n, seconds in ((20000, 1e-3), (200_000, 0.02)):
        assert len(chunk_ranges(n, 2, seconds)) == 2 * MAX_CHUNKS_PER_WORKER
    assert len(chunk_ranges(3, 2, 1e-7)) == 2
    ranges = chunk_ranges(10, 3, 1e-7)
    assert ranges[0][0] == 0 and ranges[-1][1] == 10
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))


def test_unread_async_map_still_runs_its_calls(tmp_path):
    marker = str(tmp_path / "done")
    parallel.process.async_map(sleep_then_touch, [(0.1, marker)])  # dropped at once
    deadline = time.monotonic() + PATIENCE
    while not os.path.exists(marker) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert os.path.exists(marker)


# -- a ProcessPoolExecutor passed in ---------------------------------------------

def test_process_pool_executor_instance_is_used_and_left_open():
    with concurrent.futures.ProcessPoolExecutor(1) as executor:
        worker_pid = executor.submit(pid_of).result(PATIENCE)
        assert parallel.map(pid_of, range(20), executor=executor) == [worker_pid] * 20
        assert parallel.map(lambda x: x + 1, [1], executor=executor) == [2]
        assert parallel.par([(add, 1, 2)], executor=executor) == [3]
        assert executor.submit(square, 3).result(PATIENCE) == 9


@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(),
                    reason="no forkserver start method here")
def test_process_pool_with_another_start_method():
    context = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as executor:
        assert parallel.map(square, range(10), executor=executor) == [i * i for i in range(10)]
        assert parallel.map(lambda x: -x, {"a": 1}, executor=executor) == {"a": -1}
        assert decorated_square.map([3], executor=executor) == [9]


def test_async_map_on_processes():
    with parallel.process.async_map(square, range(10)) as execution:
        assert execution.results(timeout=PATIENCE) == [i * i for i in range(10)]


def test_sys_exit_code_survives_tblibs_exception_pickling():
    # dask.distributed installs tblib's pickling support, which rebuilds a
    # SystemExit without its code: the caller's exit status would be lost.
    pytest.importorskip("tblib.pickling_support").install()
    with pytest.raises(SystemExit) as info:
        parallel.process.map(sys.exit, [4])
    assert info.value.code == 4


CTRL_C_SCRIPT = """
import os, sys, time
import parallel

def announce_and_sleep(x):
    print(os.getpid(), flush=True)
    time.sleep(60)

if __name__ == "__main__":
    parallel.process.map(announce_and_sleep, [1, 2], max_workers=2)
    print("the map was not interrupted", flush=True)
"""


def gone(pid):
    return wait_until(lambda: process_ended(pid))


def test_ctrl_c_at_the_terminal_ends_a_process_map_and_its_workers_quietly(tmp_path):
    # A terminal's Ctrl-C reaches the whole process group: the caller gets
    # the KeyboardInterrupt, and the workers end without tracebacks of
    # their own and without outliving the program.
    import select
    import signal
    import subprocess

    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT)
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    output = b""
    try:
        while output.count(b"\n") < 2:  # each call prints its worker's pid
            ready, _, _ = select.select([process.stdout], [], [], PATIENCE)
            more = os.read(process.stdout.fileno(), 4096) if ready else b""
            assert more, "the calls did not start"
            output += more
        pids = [int(line) for line in output.split()]
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=PATIENCE)
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    text = err.decode()
    assert process.returncode == -signal.SIGINT, text
    assert text.rstrip().endswith("KeyboardInterrupt")
    assert text.count("Traceback") == 1, text
    assert b"not interrupted" not in out
    assert all(gone(pid) for pid in pids)


IDLE_POOL_SCRIPT = """
import time
import parallel

if __name__ == "__main__":
    parallel.process.map(abs, [1, 2], max_workers=2)
    print("ready", flush=True)
    time.sleep(60)
"""


def test_idle_workers_do_not_outlive_a_killed_program(tmp_path):
    # A program killed outright (SIGKILL, os._exit, the OOM killer) cannot
    # stop its cached process pool: the workers see their task pipe close
    # and end, instead of lingering and holding the program's pipes open.
    import signal
    import subprocess

    script = tmp_path / "idle_pool.py"
    script.write_text(IDLE_POOL_SCRIPT)
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE)
    try:
        assert process.stdout.readline() == b"ready\n"
        with open(f"/proc/{process.pid}/task/{process.pid}/children") as children:
            workers = [int(pid) for pid in children.read().split()]
        assert len(workers) == 2
    finally:
        process.kill()
        process.communicate()
    assert all(gone(pid) for pid in workers)


def test_own_pool_cancels_a_queued_call_and_shuts_down_completely(tmp_path):
    from parallel._processes import ProcessPool

    pool = ProcessPool(1)
    try:
        running = pool.submit(sleep_then_touch, 0.3, str(tmp_path / "ran"))
        queued = pool.submit(sleep_then_touch, 0, str(tmp_path / "cancelled"))
        assert queued.cancel(), "a call no worker has taken can be cancelled"
        assert running.result(PATIENCE) == str(tmp_path / "ran")
    finally:
        pool.shutdown(wait=True)
    assert not os.path.exists(tmp_path / "cancelled")
    assert all(worker.process.exitcode == 0 for worker in pool._workers)
    assert not pool._results_thread.is_alive()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(square, 2)


def ignore_sigterm_and_sleep(pid_file):
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(pid_file, "w") as out:
        out.write(str(os.getpid()))
    time.sleep(60)


def test_a_call_that_ignores_sigterm_cannot_keep_its_worker_alive(tmp_path):
    # A timed-out call's pool is terminated; a worker whose call ignores
    # SIGTERM is killed a little later instead of running on (or making the
    # interpreter's exit wait for it).
    pid_file = str(tmp_path / "pid")
    with pytest.raises(parallel.TimeoutException):
        parallel.process.map(ignore_sigterm_and_sleep, [pid_file], max_workers=1, timeout=3)
    with open(pid_file) as pid:
        assert gone(int(pid.read()))
    assert parallel.process.map(square, [3], max_workers=1) == [9]
