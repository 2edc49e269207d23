"""Halting at safe points: a failing task stops the others only in their own
code or at their next call into pylateral, never inside the standard
library, so a halt can never leave a library lock held and hang the program.
"""
import itertools
import json
import logging
import os
import queue
import sys
import threading
import time
import traceback

import pytest

import pylateral
from pylateral_support import (  # noqa: F401  (fixtures are used by name)
    PATIENCE, isolated_pylateral, pylateral_threads, task_source_line, wait_until,
)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "scripts"))
import hang_scenarios  # noqa: E402

pytestmark = pytest.mark.timeout(180)

HERE = os.path.normcase(os.path.abspath(__file__))


class Boom(Exception):
    """The failing task's error."""


def fail_when(ready, count):
    """A task that raises Boom once ``count`` others released ``ready``."""
    @pylateral.task
    def fail():
        for _ in range(count):
            assert ready.acquire(timeout=PATIENCE), "a busy task never started"
        time.sleep(0.01)  # let them get back inside the library call
        raise Boom("first")
    return fail


def innermost_file(exc):
    """The file of the innermost frame of ``exc``'s traceback."""
    return os.path.normcase(os.path.abspath(traceback.extract_tb(exc.__traceback__)[-1].filename))


@pytest.mark.parametrize("name", sorted(hang_scenarios.SCENARIOS))
def test_a_hang_scenario_always_ends_with_the_failing_tasks_error(name):
    for _ in range(3):
        outcome, detail = hang_scenarios.run_scenario(name, deadline=90)
        assert outcome == "ok", f"{name}: {outcome}\n{detail}"


def _log_forever(log):
    while True:
        log.info("tick %d", 1)


def _dump_forever(payload):
    while True:
        json.dumps(payload, indent=1)


def _lock_forever(lock):
    while True:
        with lock:
            time.sleep(0)


def _get_forever(q):
    while True:
        try:
            q.get(timeout=0.001)
        except queue.Empty:
            pass


def test_a_halted_task_is_stopped_in_its_own_code_never_in_the_library():
    log = logging.getLogger("lateral-test-safe-points")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    log.setLevel(logging.INFO)
    loops = [
        (_log_forever, log),
        (_dump_forever, [{"k": list(range(50))}] * 200),
        (_lock_forever, threading.Lock()),
        (_get_forever, queue.Queue()),
    ]
    ready = threading.Semaphore(0)
    stopped_in = []

    @pylateral.task
    def busy(loop, arg):
        ready.release()
        try:
            loop(arg)
        except pylateral.TaskCancelled as exc:
            stopped_in.append(innermost_file(exc))
            raise

    with pytest.raises(Boom):
        with pylateral.task_pool(max_workers=len(loops) + 1):
            for loop, arg in loops:
                busy(loop, arg)
            fail_when(ready, len(loops))()
    assert stopped_in == [HERE] * len(loops)
    assert pylateral_threads() == []


def test_a_blocking_call_finishes_and_the_task_stops_at_the_next_line():
    sleeping = threading.Event()
    after = []
    cancelled_at = []

    @pylateral.task
    def sleeper():
        try:
            sleeping.set()
            time.sleep(0.3)
            after.append("ran on")
        except pylateral.TaskCancelled as exc:
            cancelled_at.append(traceback.extract_tb(exc.__traceback__)[-1].lineno)
            raise

    @pylateral.task
    def fail_while_it_sleeps():
        sleeping.wait(PATIENCE)
        raise Boom("first")

    with pytest.raises(Boom):
        with pylateral.task_pool(max_workers=2):
            sleeper()
            fail_while_it_sleeps()
    assert after == []
    assert cancelled_at == [task_source_line(sleeper, 'after.append("ran on")')]


def test_cleanup_in_finally_runs_to_the_end_after_the_task_is_stopped():
    ready = threading.Semaphore(0)
    cleaned = []

    @pylateral.task
    def spin_then_clean_up():
        ready.release()
        try:
            while True:
                pass
        finally:
            cleaned.append(1)
            cleaned.append(2)
            cleaned.append(3)

    with pytest.raises(Boom):
        with pylateral.task_pool(max_workers=2):
            spin_then_clean_up()
            fail_when(ready, 1)()
    assert cleaned == [1, 2, 3]


def test_checkpoint_raises_only_inside_a_halting_task():
    assert pylateral.checkpoint() is None  # no pool
    ready = threading.Semaphore(0)
    again = []

    @pylateral.task
    def catches_then_checks():
        ready.release()
        try:
            while True:
                pass
        except pylateral.TaskCancelled:
            pass
        try:
            pylateral.checkpoint()
        except pylateral.TaskCancelled as exc:
            again.append(str(exc))
            raise

    with pytest.raises(Boom):
        with pylateral.task_pool(max_workers=2):
            assert pylateral.checkpoint() is None  # the main thread
            catches_then_checks()
            fail_when(ready, 1)()
    assert again == ["the task pool was halted by an error in another task"]


def test_a_task_call_from_a_halted_task_raises_task_cancelled():
    ready = threading.Semaphore(0)
    outcomes = []

    @pylateral.task
    def child():
        outcomes.append("child ran")

    @pylateral.task
    def parent():
        ready.release()
        try:
            while True:
                pass
        except pylateral.TaskCancelled:
            pass
        try:
            child()
        except pylateral.TaskCancelled:
            outcomes.append("refused")

    with pytest.raises(Boom):
        with pylateral.task_pool(max_workers=2):
            parent()
            fail_when(ready, 1)()
    assert outcomes == ["refused"]


def test_a_cache_result_function_is_a_safe_point_even_when_called_from_c():
    @pylateral.cache_result()
    def constant(x):
        return x

    ready = threading.Semaphore(0)
    stopped = []

    @pylateral.task
    def map_forever():
        constant(0)  # cached from now on: only library code and C run below
        ready.release()
        try:
            for _ in map(constant, itertools.repeat(0)):
                pass
        except pylateral.TaskCancelled:
            stopped.append(True)
            raise

    with pytest.raises(Boom):
        with pylateral.task_pool(max_workers=2):
            map_forever()
            fail_when(ready, 1)()
    assert stopped == [True]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_task_error_a_finalizer_swallowed_is_raised_at_the_pool_exit():
    @pylateral.task
    def noop():
        pass

    @pylateral.task
    def bad():
        raise Boom("swallowed by __del__")

    class CallsATaskWhenFinalized:
        def __del__(self):
            noop()  # raises the pool's first error here, where it is only printed

    with pytest.raises(Boom, match="swallowed by __del__"):
        with pylateral.task_pool(max_workers=1) as pool:
            bad()
            assert wait_until(lambda: len(pool.errors) == 1)
            CallsATaskWhenFinalized()  # finalized at once


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is 3.12+")
def test_the_line_watch_is_switched_off_when_the_halt_ends():
    ready = threading.Semaphore(0)

    @pylateral.task
    def spin():
        ready.release()
        while True:
            pass

    with pytest.raises(Boom):
        with pylateral.task_pool(max_workers=2):
            spin()
            fail_when(ready, 1)()
    assert [sys.monitoring.get_tool(t) for t in range(6)].count("lateral") == 0
