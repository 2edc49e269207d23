"""strand.dispatch: many calls at once, with results, statuses and errors collected."""
import asyncio
import threading

import pytest

import strand
from strand_support import add, fail, pid_and_value, wait_until

pytestmark = pytest.mark.timeout(90)


def test_thread_dispatch_collects_results_statuses_and_errors():
    dispatched = strand.dispatch(add, [(1, 2), strand.Args(3, b=4), {"a": 5}, 6, ("x", 1)])
    assert dispatched.wait(30)
    assert dispatched.results == [3, 7, 5, 6, None]
    assert dispatched.statuses == ["complete"] * 4 + ["error"]
    assert list(dispatched.errors) == [4] and isinstance(dispatched.errors[4], TypeError)
    assert dispatched.counts() == {"new": 0, "running": 0, "complete": 4, "error": 1}
    with pytest.raises(TypeError):
        dispatched.result(0)


def test_thread_dispatch_runs_calls_in_parallel():
    barrier = threading.Barrier(4, timeout=30)
    dispatched = strand.dispatch(lambda _: barrier.wait(), range(4))
    assert sorted(dispatched.result(30)) == [0, 1, 2, 3]


def test_statuses_show_running_calls():
    release = threading.Event()
    dispatched = strand.dispatch(lambda _: release.wait(30), range(2))
    try:
        wait_until(lambda: dispatched.counts()["running"] == 2, timeout=30)
        assert not dispatched.done()
    finally:
        release.set()
    assert dispatched.result(30) == [True, True]


def test_process_dispatch():
    dispatched = strand.dispatch(pid_and_value, [1, 2, 3], target="process")
    results = dispatched.result(60)
    assert [value for _, value in results] == [1, 2, 3]
    assert all(isinstance(h, strand.ProcessTaskHandle) for h in dispatched.handles)


def test_store_dispatch_with_a_reader():
    store = {}
    reader = strand.StoreTaskReader(store).listen()
    try:
        dispatched = strand.dispatch(add, [(i, i) for i in range(10)] + [("a", 1)],
                                     target="store", store=store)
        assert dispatched.wait(30)
    finally:
        reader.stop()
    assert dispatched.results[:10] == [2 * i for i in range(10)]
    assert dispatched.statuses[-1] == "error"
    assert isinstance(dispatched.errors[10], strand.StoreTaskError)


def test_sync_and_coroutine_dispatch_outside_a_loop():
    assert strand.dispatch(add, [(1, 1), (2, 2)], target="sync").results == [2, 4]

    async def doubled(x):
        await asyncio.sleep(0)
        return 2 * x

    assert strand.dispatch(doubled, [1, 2], target="coroutine").results == [2, 4]


def test_coroutine_dispatch_inside_a_loop_is_awaitable():
    async def doubled(x):
        await asyncio.sleep(0)
        return 2 * x

    async def main():
        return await strand.dispatch(doubled, [1, 2, 3], target="coroutine")

    assert asyncio.run(main()) == [2, 4, 6]


def test_errors_handled_by_on_error_still_count_as_errors():
    handled = []
    dispatched = strand.dispatch(fail, ["a", "b"], on_error=handled.append)
    assert dispatched.wait(30)
    assert dispatched.statuses == ["error", "error"] and len(handled) == 2
    assert set(dispatched.errors) == {0, 1}


def test_dispatch_accepts_a_ready_runner_and_more_submissions():
    dispatched = strand.dispatch(strand.ThreadTaskrunner(add, 100), [1])
    assert dispatched.submit(2) == 1 and len(dispatched) == 2
    assert dispatched.result(30) == [101, 102]


def test_unknown_dispatch_target():
    with pytest.raises(ValueError, match="unknown taskrunner target"):
        strand.dispatch(add, [], target="cluster")
