"""strand.MultiprocessTaskrunner: another process, callbacks back home."""
import os
import threading

import pytest

import strand
from strand_support import (add, decorated_square, exit_with, fail, kill_self, pid_and_value,
                            raise_unprintable, squares, wait_for_file)

pytestmark = pytest.mark.timeout(90)


def test_runs_in_another_process_and_returns_a_joinable_handle():
    handle = strand.MultiprocessTaskrunner(pid_and_value)(7)
    child_pid, value = handle.result(60)
    assert value == 7 and child_pid == handle.pid != os.getpid()
    assert handle.status == "complete"


def test_callbacks_run_in_the_calling_process_with_the_childs_items():
    seen = []

    def record(kind):
        return lambda value: seen.append((kind, value, os.getpid()))

    handle = strand.MultiprocessTaskrunner(squares, on_iter=record("item"),
                                           on_end=record("end"))(4)
    assert handle.result(60) is None  # a generator's items were streamed instead
    assert [(kind, value) for kind, value, _ in seen] == [
        ("item", 0), ("item", 1), ("item", 4), ("item", 9), ("end", None)]
    assert {pid for _, _, pid in seen} == {os.getpid()}


def test_items_reach_on_iter_while_the_child_still_runs(tmp_path):
    release = tmp_path / "release"
    first_item = threading.Event()

    def on_iter(item):
        if item == "first":
            first_item.set()

    handle = strand.MultiprocessTaskrunner(_two_items, on_iter=on_iter)(str(release))
    assert first_item.wait(60)  # the child is blocked until we create the file
    assert not handle.done()
    release.touch()
    handle.join(60)
    assert handle.status == "complete"


def _two_items(release):
    yield "first"
    wait_for_file(release)
    yield "second"


def test_a_list_result_goes_to_on_iter_and_on_end():
    items, ends = [], []
    handle = strand.MultiprocessTaskrunner(list, on_iter=items.append, on_end=ends.append)("ab")
    assert handle.result(60) == ["a", "b"] and items == ["a", "b"] and ends == [["a", "b"]]


def test_childs_exception_is_raised_with_the_remote_traceback():
    handle = strand.MultiprocessTaskrunner(fail)("boom")
    with pytest.raises(ValueError, match="boom") as info:
        handle.result(60)
    assert isinstance(info.value.__cause__, strand.RemoteTraceback)
    assert "in fail" in str(info.value.__cause__)


def test_on_error_gets_the_childs_exception_in_the_calling_process():
    errors = []
    handle = strand.MultiprocessTaskrunner(fail, on_error=errors.append)("bad")
    assert handle.result(60) is None
    assert isinstance(errors[0], ValueError) and handle.status == "error"


def test_sys_exit_in_the_child_is_the_calls_exception_not_an_exit_code():
    handle = strand.MultiprocessTaskrunner(exit_with)(7)
    with pytest.raises(SystemExit) as info:
        handle.result(60)
    assert info.value.code == 7 and handle.status == "error"


def test_an_unpicklable_unprintable_exception_still_reaches_the_caller():
    handle = strand.MultiprocessTaskrunner(raise_unprintable)()
    with pytest.raises(RuntimeError, match=r"UnprintableError: <exception str\(\) failed>.*"
                                           "could not be pickled") as info:
        handle.result(60)
    assert "raise_unprintable" in str(info.value.__cause__)


def test_a_crashed_child_gives_a_clear_error():
    handle = strand.MultiprocessTaskrunner(kill_self)()
    with pytest.raises(strand.TaskProcessError, match="killed by signal SIGKILL"):
        handle.result(60)


def test_a_child_exiting_early_gives_a_clear_error():
    handle = strand.MultiprocessTaskrunner(os._exit)(3)
    with pytest.raises(strand.TaskProcessError, match="exited with code 3"):
        handle.result(60)


def test_terminate_stops_the_child():
    handle = strand.MultiprocessTaskrunner(wait_for_file)("/nonexistent/never", 120)
    handle.terminate()
    with pytest.raises(strand.TaskProcessError, match="SIGTERM"):
        handle.result(60)


def test_lambdas_and_closures_reach_a_spawn_child_by_value():
    offset = 10
    runner = strand.MultiprocessTaskrunner(lambda x: x + offset, mp_context="spawn")
    assert runner(5).result(60) == 15


def test_unpicklable_function_gives_a_clear_error_with_spawn():
    lock = threading.Lock()

    def locked():
        with lock:
            return 1

    runner = strand.MultiprocessTaskrunner(locked, mp_context="spawn")
    with pytest.raises(TypeError, match="cannot send the function of locked"):
        runner()


def test_unpicklable_argument_gives_a_clear_error_with_spawn():
    runner = strand.MultiprocessTaskrunner(add, mp_context="spawn")
    with pytest.raises(TypeError, match="cannot send the arguments of add"):
        runner(threading.Lock())


def test_generator_without_on_iter_cannot_come_back_and_says_why():
    handle = strand.MultiprocessTaskrunner(squares)(3)
    with pytest.raises(TypeError, match="needs on_iter"):
        handle.result(60)


def test_decorated_module_function_works_with_spawn():
    # @as_task('process') replaced the module's function by its runner
    assert decorated_square.func.__name__ == "decorated_square"
    spawn_runner = strand.MultiprocessTaskrunner(decorated_square.func, mp_context="spawn")
    assert spawn_runner(9).result(60) == 81
    assert decorated_square(5).result(60) == 25


def test_bad_mp_context_is_refused():
    with pytest.raises(ValueError, match="mp_context"):
        strand.MultiprocessTaskrunner(add, mp_context="teleport")


def test_sys_exit_code_survives_tblibs_exception_pickling():
    # dask.distributed installs tblib's pickling support, which rebuilds a
    # SystemExit without its code: the caller's exit status would be lost.
    pytest.importorskip("tblib.pickling_support").install()
    with pytest.raises(SystemExit) as info:
        strand.MultiprocessTaskrunner(exit_with)(6).result(60)
    assert info.value.code == 6
