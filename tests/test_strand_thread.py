"""strand.ThreadTaskrunner: runs on the core's shared pool and returns a handle."""
import os
import threading

import pytest

import strand
from strand_support import add, long_blocking_function, long_blocking_function_as_written

pytestmark = pytest.mark.timeout(60)


def test_document_basic_usage_with_integer_arguments(capsys):
    def handle_chunk(chunk):
        print(f'got a chunk: {chunk}')

    runner = strand.ThreadTaskrunner(long_blocking_function, on_iter=handle_chunk)
    handle = runner(10 ** 5, 10 ** 3)
    assert handle.join(30)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 100
    assert lines[0] == "got a chunk: range(0, 1000)"
    assert lines[-1] == "got a chunk: range(99000, 100000)"


def test_document_float_arguments_fail_inside_the_handle_not_silently():
    handle = strand.ThreadTaskrunner(long_blocking_function)(1e8, 1e3)
    with pytest.raises(TypeError, match="float"):
        handle.result(30)


def test_document_generator_as_written_needs_integer_division():
    # ``range(total_size / chunk_size)`` is a float even for integers: the
    # error reaches the handle when on_iter consumes the generator.
    handle = strand.ThreadTaskrunner(long_blocking_function_as_written,
                                     on_iter=lambda chunk: None)(10, 5)
    assert isinstance(handle.exception(30), TypeError)


def test_call_returns_at_once_and_runs_in_a_strand_pool_thread():
    release = threading.Event()

    def blocked():
        assert release.wait(30)
        return threading.current_thread().name

    handle = strand.ThreadTaskrunner(blocked)()
    assert not handle.done() and handle.status in ("new", "running")
    release.set()
    assert handle.result(30).startswith("strand-")
    assert handle.status == "complete"


def test_calls_run_in_parallel():
    barrier = threading.Barrier(3, timeout=30)
    handles = [strand.ThreadTaskrunner(barrier.wait)() for _ in range(3)]
    assert sorted(h.result(30) for h in handles) == [0, 1, 2]


def test_threads_are_reused_not_started_per_call():
    # kernel thread ids are not recycled at once, unlike threading.get_ident()
    runner = strand.ThreadTaskrunner(threading.get_native_id)
    native_ids = {runner().result(30) for _ in range(200)}
    assert len(native_ids) <= strand.thread_pool().max_workers
    assert threading.get_native_id() not in native_ids


def test_handle_holds_the_exception_with_its_traceback():
    handle = strand.ThreadTaskrunner(int)("x")
    with pytest.raises(ValueError) as info:
        handle.result(30)
    assert info.value.__traceback__ is not None
    assert isinstance(handle.exception(), ValueError)
    assert handle.status == "error"


def test_result_times_out_while_the_call_runs():
    release = threading.Event()
    handle = strand.ThreadTaskrunner(release.wait)(30)
    with pytest.raises(TimeoutError):
        handle.result(timeout=0.05)
    assert handle.join(0.01) is False
    release.set()
    assert handle.result(30) is True


def test_callbacks_run_in_the_worker_thread_after_func_returns():
    seen = []
    runner = strand.ThreadTaskrunner(
        add, on_end=lambda value: seen.append((value, threading.current_thread().name)))
    assert runner(2, 3).result(30) == 5
    assert seen == [(5, seen[0][1])] and seen[0][1].startswith("strand-")


def test_on_error_handles_the_exception_and_status_reports_it():
    errors = []
    handle = strand.ThreadTaskrunner(int, on_error=errors.append)("x")
    assert handle.result(30) is None
    assert isinstance(errors[0], ValueError)
    assert handle.status == "error" and handle.exception() is errors[0]


def test_init_args_make_a_partial():
    assert strand.ThreadTaskrunner(add, 40)(2).result(30) == 42


def test_coroutine_function_is_refused_with_a_hint():
    async def coro():
        return 1

    with pytest.raises(TypeError, match="CoroutineTaskrunner"):
        strand.ThreadTaskrunner(coro)
    handle = strand.ThreadTaskrunner(coro, safety_checks=False)()
    value = handle.result(30)
    value.close()  # a coroutine object, as asked


def test_pool_is_recreated_in_a_forked_child():
    assert strand.ThreadTaskrunner(add)(1, 1).result(30) == 2
    pid = os.fork()
    if pid == 0:
        try:
            ok = strand.ThreadTaskrunner(add)(2, 3).result(20) == 5
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
