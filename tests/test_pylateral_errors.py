"""pylateral's error behaviour: unexpected return values, task exceptions
halting the pool, timeouts, a second pool, and bad settings."""
import re
import threading
import traceback

import pytest

import pylateral
from pylateral_support import (  # noqa: F401  (fixtures are used by name)
    PATIENCE, Counter, isolated_pylateral, pylateral_threads, task_source_line,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)


@pylateral.task
def favorite_animal():
    """Returns a value although it is not declared to."""
    return "cats"


@pylateral.task
def bad_task():
    """Fails."""
    raise Exception("Bad Task!")


@pylateral.task
def noop():
    """Does nothing."""


def wait_for_an_error(pool):
    """Wait until a task of ``pool`` has failed."""
    assert wait_until(lambda: len(pool.errors) > 0), "no task error was recorded"


def frames_of(exc):
    """(function name, line) of every frame of ``exc``'s traceback."""
    return [(frame.name, frame.lineno) for frame in traceback.extract_tb(exc.__traceback__)]


# --- unexpected return values ------------------------------------------------------

def test_unexpected_return_value_alias_is_the_same_class():
    assert pylateral.UnexpectedReturnValue is pylateral.UnexpectedReturnValueError
    assert issubclass(pylateral.UnexpectedReturnValueError, Exception)


def test_unexpected_return_value_is_raised_at_pool_exit_and_names_the_task():
    with pytest.raises(pylateral.UnexpectedReturnValue) as caught:
        with pylateral.task_pool(max_workers=1):
            favorite_animal()
    assert "favorite_animal" in str(caught.value)
    assert pylateral_threads() == []


def test_unexpected_return_value_is_raised_at_the_next_task_call():
    with pylateral.task_pool(max_workers=1) as pool:
        favorite_animal()
        wait_for_an_error(pool)
        with pytest.raises(pylateral.UnexpectedReturnValueError):
            noop()
    assert len(pool.errors) == 1


def test_unexpected_return_value_is_raised_at_join():
    with pylateral.task_pool(max_workers=1):
        favorite_animal()
        with pytest.raises(pylateral.UnexpectedReturnValueError):
            pylateral.join()


def test_unexpected_return_value_outside_a_pool_is_raised_by_the_call():
    with pytest.raises(pylateral.UnexpectedReturnValueError, match="favorite_animal"):
        favorite_animal()


def test_returning_none_or_declaring_the_value_is_not_an_error():
    @pylateral.task
    def explicit_none():
        return None

    @pylateral.task(has_return_value=True)
    def declared():
        return "cats"

    with pylateral.task_pool(max_workers=2) as pool:
        explicit_none()
        declared()
    assert pool.errors == []
    assert pool.return_values() == ["cats"]


# --- task exceptions -------------------------------------------------------------

def test_task_exception_reaches_the_main_thread_with_the_worker_traceback():
    with pytest.raises(Exception, match="Bad Task!") as caught:
        with pylateral.task_pool() as pool:
            bad_task()  # raises Exception("Bad Task!") in the main thread
    raise_line = task_source_line(bad_task, 'raise Exception("Bad Task!")')
    assert ("bad_task", raise_line) in frames_of(caught.value)
    assert type(caught.value) is Exception
    assert pool.errors == [caught.value]


def test_task_exception_is_raised_at_the_next_task_call_and_at_join():
    with pylateral.task_pool(max_workers=1) as pool:
        bad_task()
        wait_for_an_error(pool)
        with pytest.raises(Exception, match="Bad Task!") as at_call:
            noop()
        assert "bad_task" in [name for name, _ in frames_of(at_call.value)]
        bad_task()
        with pytest.raises(Exception, match="Bad Task!"):
            pylateral.join()
    assert len(pool.errors) == 2


def test_an_error_drops_the_queued_tasks():
    all_queued = threading.Event()
    ran = Counter()

    @pylateral.task
    def fail_once_all_are_queued():
        all_queued.wait(PATIENCE)
        raise ValueError("boom")

    @pylateral.task
    def queued():
        ran.add()

    with pytest.raises(ValueError, match="boom"):
        with pylateral.task_pool(max_workers=1):
            fail_once_all_are_queued()
            for _ in range(3000):  # a long queue, dropped whole
                queued()
            all_queued.set()
    assert ran.value == 0  # the single worker was busy failing: all 3000 were still queued
    assert pylateral_threads() == []


def test_an_error_interrupts_a_task_running_a_python_loop():
    looping = threading.Event()
    never = threading.Event()
    reached_end = []

    @pylateral.task
    def loop_until_told():
        looping.set()
        while not never.is_set():
            pass
        reached_end.append(True)

    @pylateral.task
    def fail_while_it_loops():
        looping.wait(PATIENCE)
        raise KeyError("first")

    with pytest.raises(KeyError):
        with pylateral.task_pool(max_workers=2):
            loop_until_told()
            fail_while_it_loops()
    assert looping.is_set()
    assert reached_end == []
    assert pylateral_threads() == []


def test_later_errors_stay_readable_on_the_pool():
    looping = threading.Event()

    @pylateral.task
    def cleanup_fails_when_interrupted():
        try:
            looping.set()
            while True:
                pass
        except pylateral.TaskCancelled:
            raise RuntimeError("cleanup failed")

    @pylateral.task
    def fail_first():
        looping.wait(PATIENCE)
        raise KeyError("first")

    with pytest.raises(KeyError) as caught:
        with pylateral.task_pool(max_workers=2) as pool:
            cleanup_fails_when_interrupted()
            fail_first()
    assert pool.errors[0] is caught.value
    assert [type(e) for e in pool.errors] == [KeyError, RuntimeError]
    # The first line: on 3.10 the call-site note follows it in the message.
    assert str(pool.errors[1]).splitlines()[0] == "cleanup failed"


def test_the_pool_works_again_after_an_error_is_caught_in_the_with_block():
    @pylateral.task(has_return_value=True)
    def echo(x):
        return x

    with pylateral.task_pool(max_workers=2) as pool:
        bad_task()
        with pytest.raises(Exception, match="Bad Task!"):
            pylateral.join()
        for x in range(5):
            echo(x)
    assert sorted(pool.return_values()) == [0, 1, 2, 3, 4]
    assert len(pool.errors) == 1


def test_an_exception_in_the_with_body_cancels_the_pool_and_propagates():
    ran = Counter()
    gate = threading.Event()

    @pylateral.task
    def held():
        gate.wait(PATIENCE)
        ran.add()

    with pytest.raises(ZeroDivisionError):
        with pylateral.task_pool(max_workers=1):
            for _ in range(20):
                held()
            gate.set()
            1 / 0
    assert ran.value < 20
    assert pylateral_threads() == []


def test_join_from_inside_a_task_raises_runtime_error():
    raised = []

    @pylateral.task
    def joins():
        try:
            pylateral.join()
        except RuntimeError as exc:
            raised.append(exc)

    with pylateral.task_pool(max_workers=2):
        joins()
    assert len(raised) == 1 and "join" in str(raised[0])


# --- timeout -----------------------------------------------------------------------

def test_pool_timeout_when_tasks_outlive_it():
    never = threading.Event()
    looping = threading.Event()

    @pylateral.task
    def outlives_the_pool():
        looping.set()
        while not never.wait(0.01):
            pass

    with pytest.raises(pylateral.PoolTimeoutError) as caught:
        with pylateral.task_pool(max_workers=2, timeout=0.2):
            outlives_the_pool()
            outlives_the_pool()
            outlives_the_pool()
    assert isinstance(caught.value, TimeoutError)
    assert looping.is_set()
    assert pylateral_threads() == []


def test_pool_timeout_message_names_the_timeout():
    never = threading.Event()

    @pylateral.task
    def outlives_the_pool():
        while not never.wait(0.01):
            pass

    with pytest.raises(pylateral.PoolTimeoutError) as caught:
        with pylateral.task_pool(max_workers=1, timeout=0.25):
            outlives_the_pool()
    assert "0.25" in str(caught.value)


def test_pool_that_finishes_in_time_does_not_time_out():
    @pylateral.task(has_return_value=True)
    def quick(x):
        return x

    with pylateral.task_pool(max_workers=2, timeout=PATIENCE) as pool:
        for x in range(10):
            quick(x)
    assert sorted(pool.return_values()) == list(range(10))


def test_a_zero_timeout_does_not_fail_a_pool_whose_tasks_are_done():
    # The timeout is for the tasks: the exit's wait for the threads to end
    # is not counted against it.
    @pylateral.task(has_return_value=True)
    def quick(x):
        return x

    for _ in range(20):
        with pylateral.task_pool(max_workers=4, timeout=0) as pool:
            for x in range(4):
                quick(x)
            pylateral.join(timeout=PATIENCE)
        assert sorted(pool.return_values()) == list(range(4))
    assert pylateral_threads() == []


def test_join_with_a_timeout_raises_pool_timeout():
    gate = threading.Event()

    @pylateral.task
    def held():
        while not gate.wait(0.01):
            pass

    with pylateral.task_pool(max_workers=1):
        held()
        with pytest.raises(pylateral.PoolTimeoutError):
            pylateral.join(timeout=0.1)
        gate.set()


@pytest.mark.parametrize("forever", [float("inf"), 10**400], ids=["inf", "int-beyond-float"])
def test_a_timeout_too_large_for_a_float_means_forever(forever):
    @pylateral.task(has_return_value=True)
    def quick(x):
        return x

    with pylateral.task_pool(max_workers=2, timeout=forever) as pool:
        quick(1)
        pylateral.join(timeout=forever)
    assert pool.return_values() == [1]
    with pytest.raises(ValueError, match="timeout must be a non-negative"):
        pylateral.task_pool(timeout=-forever)


# --- a second pool -------------------------------------------------------------------

def test_a_second_pool_in_the_same_thread_is_refused():
    @pylateral.task(has_return_value=True)
    def echo(x):
        return x

    with pylateral.task_pool(max_workers=1) as pool:
        with pytest.raises(pylateral.TaskPoolAlreadyAllocated):
            with pylateral.task_pool():
                pass  # pragma: no cover
        echo("first pool still works")
    assert pool.return_values() == ["first pool still works"]
    with pylateral.task_pool(max_workers=1):
        noop()


def test_a_second_pool_from_another_thread_is_refused():
    refused = []

    def open_pool():
        try:
            with pylateral.task_pool(max_workers=1):
                pass
        except pylateral.TaskPoolAlreadyAllocated as exc:
            refused.append(exc)

    with pylateral.task_pool(max_workers=1):
        other = threading.Thread(target=open_pool)
        other.start()
        other.join(PATIENCE)
    assert len(refused) == 1
    with pylateral.task_pool(max_workers=1):
        noop()


# --- bad settings ----------------------------------------------------------------------

@pytest.mark.parametrize("value, error", [
    (0, ValueError), (-1, ValueError), (2.5, TypeError), ("3", TypeError),
    (True, TypeError),
])
def test_bad_max_workers_is_refused_naming_the_value(value, error):
    with pytest.raises(error, match=f"max_workers.*{re.escape(repr(value))}"):
        with pylateral.task_pool(max_workers=value):
            pass  # pragma: no cover
    assert pylateral_threads() == []
    assert pylateral.get_current_task_pool() is None


@pytest.mark.parametrize("value", ["abc", "0", "-2", "2.5"])
def test_bad_pylateral_workers_is_refused_naming_it(monkeypatch, value):
    monkeypatch.setenv("PYLATERAL_WORKERS", value)
    with pytest.raises(ValueError, match=f"PYLATERAL_WORKERS.*{re.escape(repr(value))}"):
        with pylateral.task_pool():
            pass  # pragma: no cover
    assert pylateral_threads() == []
    assert pylateral.get_current_task_pool() is None


@pytest.mark.parametrize("value", ["maybe", "flase", "2"])
def test_malformed_pylateral_enabled_is_refused_naming_it(monkeypatch, value):
    monkeypatch.setenv("PYLATERAL_ENABLED", value)
    with pytest.raises(ValueError, match=f"PYLATERAL_ENABLED.*{re.escape(repr(value))}"):
        pylateral.task_pool()
    assert pylateral.get_current_task_pool() is None


@pytest.mark.parametrize("value, error", [(-1, ValueError), ("1", TypeError),
                                          (True, TypeError)])
def test_bad_timeout_is_refused_naming_the_value(value, error):
    with pytest.raises(error, match=f"timeout.*{re.escape(repr(value))}"):
        pylateral.task_pool(timeout=value)


def test_task_refuses_a_non_callable():
    with pytest.raises(TypeError, match="callable"):
        pylateral.task(42)


def test_return_values_of_a_pool_never_entered_is_an_error():
    with pytest.raises(RuntimeError, match="not been entered"):
        pylateral.task_pool().return_values()


def test_cache_result_refuses_unhashable_arguments():
    @pylateral.cache_result(scope=pylateral.CacheScopes.PROCESS)
    def lookup(key):
        return key

    with pytest.raises(TypeError, match="hashable"):
        lookup(["a", "list"])
    with pytest.raises(TypeError, match="hashable"):
        lookup(key={"a": "dict"})


@pytest.mark.parametrize("scope", ["thread", 3, None])
def test_cache_result_refuses_a_bad_scope_naming_it(scope):
    with pytest.raises(ValueError, match=f"scope.*{re.escape(repr(scope))}"):
        pylateral.cache_result(scope=scope)
