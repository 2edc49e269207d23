"""Drop-in compatibility with the published pylateral 1.0.0: code written for
it imports its module paths, catches its errors, reads its environment
variables and sees ``block_when_saturated`` block at its threshold."""
import contextlib
import pickle
import signal
import sys
import threading

import pytest

import pylateral
import pylateral.exceptions
import pylateral.task_group_module
import pylateral.task_module
import pylateral.task_pool_module
import pylateral.timeout
import pylateral.util
from pylateral_support import (  # noqa: F401  (fixtures are used by name)
    PATIENCE, calls_done_while_workers_are_busy, isolated_pylateral,
)


# --- module paths --------------------------------------------------------------

def test_published_module_paths_hold_the_published_names():
    assert pylateral.task_module.task is pylateral.task
    assert pylateral.task_pool_module.task_pool is pylateral.task_pool
    assert pylateral.task_pool_module.join is pylateral.join
    assert pylateral.task_pool_module.TaskPool is pylateral.TaskPool
    assert pylateral.task_pool_module.TaskPoolAlreadyAllocated is pylateral.TaskPoolAlreadyAllocated
    assert pylateral.task_pool_module.get_current_task_pool is pylateral.get_current_task_pool
    assert pylateral.task_group_module.task_group is pylateral.task_group
    assert pylateral.exceptions.PylateralError is pylateral.PylateralError
    assert pylateral.util.PoolTimeoutError is pylateral.PoolTimeoutError


def test_unexpected_return_value_is_caught_through_the_task_module():
    @pylateral.task
    def returns_something():
        return "something"

    with pytest.raises(pylateral.task_module.UnexpectedReturnValue):
        returns_something()
    assert pylateral.task_module.UnexpectedReturnValue is pylateral.UnexpectedReturnValueError


@contextlib.contextmanager
def one_stuck_task(**pool_options):
    """A pool of one worker running a task that only ends when interrupted
    (or when the test is over); yields the pool."""
    release = threading.Event()

    @pylateral.task
    def stuck():
        while not release.wait(0.01):  # stopped at its next line once timed out
            pass

    try:
        with pylateral.task_pool(max_workers=1, **pool_options) as pool:
            stuck()
            yield pool
    finally:
        release.set()


def test_pool_timeout_is_caught_through_util_and_leaves_no_pool():
    with pytest.raises(pylateral.util.PoolTimeoutError):
        with one_stuck_task(timeout=0.1):
            pass
    assert pylateral.task_pool_module.get_current_task_pool() is None


def test_task_group_already_exists_is_importable_and_groups_nest():
    assert issubclass(pylateral.task_group_module.TaskGroupAlreadyExists, pylateral.PylateralError)

    @pylateral.task(has_return_value=True)
    def one():
        return 1

    with pylateral.task_group() as outer:
        one()
        with pylateral.task_group() as inner:  # the published library raised here
            one()
    assert inner.results == [1] and outer.results == [1]


def test_get_current_task_group_inside_and_outside_a_group():
    assert pylateral.task_group_module.get_current_task_group() is None
    seen = []

    @pylateral.task
    def record():
        seen.append(pylateral.get_current_task_group())

    with pylateral.task_pool(max_workers=2):
        with pylateral.task_group() as group:
            assert pylateral.get_current_task_group() is group
            record()
    assert seen == [group]
    assert pylateral.get_current_task_group() is None


# --- errors are pylateral's -------------------------------------------------------

@pytest.mark.parametrize("name", ["PylateralError", "UnexpectedReturnValueError",
                                  "TaskPoolAlreadyAllocated", "PoolTimeoutError",
                                  "TaskCancelled", "PoolForkedError"])
def test_errors_show_and_pickle_as_pylateral_names(name):
    error_class = getattr(pylateral, name)
    assert error_class.__module__ == "pylateral"
    assert error_class.__qualname__ == name
    copy = pickle.loads(pickle.dumps(error_class("detail")))
    assert type(copy) is error_class and copy.args == ("detail",)


# --- block_when_saturated's threshold ------------------------------------------

@pytest.mark.parametrize("workers", [1, 3])
def test_the_call_that_makes_every_worker_busy_returns_once_one_is_free(workers):
    # Published pylateral: with max_workers=1 and 1 s tasks, every call
    # returned after 1 s; the call number max_workers is the first to wait.
    assert calls_done_while_workers_are_busy(workers, 2 * workers, block_when_saturated=True) \
        == workers - 1


def test_without_blocking_every_call_returns_at_once():
    assert calls_done_while_workers_are_busy(2, 4, block_when_saturated=False) == 4


# --- environment variables -----------------------------------------------------

def test_pylateral_block_when_saturated_environment_turns_blocking_on(monkeypatch):
    monkeypatch.setenv("PYLATERAL_BLOCK_WHEN_SATURATED", "true")
    assert pylateral.task_pool().block_when_saturated is True
    assert calls_done_while_workers_are_busy(2, 4) == 1


def test_block_when_saturated_argument_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("PYLATERAL_BLOCK_WHEN_SATURATED", "TRUE")
    assert pylateral.task_pool(block_when_saturated=False).block_when_saturated is False
    monkeypatch.setenv("PYLATERAL_BLOCK_WHEN_SATURATED", "false")
    assert pylateral.task_pool().block_when_saturated is False
    assert pylateral.task_pool(block_when_saturated=True).block_when_saturated is True


def test_pylateral_timeout_environment_limits_the_pool_exit(monkeypatch):
    monkeypatch.setenv("PYLATERAL_TIMEOUT", "0.2")
    with pytest.raises(pylateral.PoolTimeoutError):
        with one_stuck_task() as pool:
            assert pool.timeout == 0.2


def test_timeout_argument_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("PYLATERAL_TIMEOUT", "5")
    assert pylateral.task_pool().timeout == 5.0
    assert pylateral.task_pool(timeout=30).timeout == 30
    monkeypatch.setenv("PYLATERAL_TIMEOUT", "")
    assert pylateral.task_pool().timeout is None


# --- pylateral.timeout --------------------------------------------------------

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="SIGALRM")


@posix_only
def test_timeout_context_raises_timeout_error_and_restores_the_handler():
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(TimeoutError, match="late"):
        with pylateral.timeout.timeout(0.05, timeout_message="late"):
            threading.Event().wait(PATIENCE)
    assert signal.getsignal(signal.SIGALRM) == before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@posix_only
def test_timeout_decorator_can_suppress_the_error():
    finished = []

    @pylateral.timeout.timeout(0.05, suppress_timeout_errors=True)
    def slow():
        threading.Event().wait(PATIENCE)
        finished.append(True)  # pragma: no cover - interrupted

    assert slow() is None
    assert finished == []


@posix_only
def test_timeout_that_does_not_run_out_changes_nothing():
    with pylateral.timeout.timeout(PATIENCE):
        value = 1 + 1
    assert value == 2 and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.parametrize("seconds, error", [(0, ValueError), (-1, ValueError),
                                            (float("inf"), ValueError), ("1", TypeError),
                                            (True, TypeError)])
def test_timeout_refuses_bad_seconds(seconds, error):
    with pytest.raises(error, match="timeout needs"):
        pylateral.timeout.timeout(seconds)


def test_timeout_refuses_other_threads():
    errors = []

    def use():
        try:
            with pylateral.timeout.timeout(1):
                pass  # pragma: no cover
        except RuntimeError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=use)
    thread.start()
    thread.join()
    assert errors and "main thread" in errors[0]
