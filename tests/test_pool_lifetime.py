"""A core pool that nobody references any more closes its threads, but only
once its queued and running tasks are done: nothing is lost, nothing leaks."""
import gc
import threading

import pytest

import _lateral
from common_support import PATIENCE, Counter, wait_until

pytestmark = pytest.mark.timeout(120)


def threads_named(prefix):
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix + "-")]


def test_a_pool_dropped_without_close_ends_its_threads():
    ran = Counter()
    pool = _lateral.Pool(4, "dropped")
    for _ in range(16):
        pool.submit(ran.add, has_return_value=True)
    assert wait_until(lambda: ran.value == 16)
    assert threads_named("dropped")
    del pool
    assert wait_until(lambda: threads_named("dropped") == [], PATIENCE), threads_named("dropped")


def test_a_pool_dropped_with_work_queued_runs_all_of_it_first():
    gate = threading.Event()
    ran = Counter()

    def held():
        gate.wait(PATIENCE)
        ran.add()

    pool = _lateral.Pool(2, "queued")
    for _ in range(50):
        pool.submit(held)
    del pool
    gc.collect()
    gate.set()
    assert wait_until(lambda: ran.value == 50)
    assert wait_until(lambda: threads_named("queued") == [], PATIENCE), threads_named("queued")


def test_a_pool_whose_own_task_drops_the_last_reference_ends_cleanly():
    holder = [_lateral.Pool(3, "selfdrop")]
    done = threading.Event()

    def drop_the_pool():
        holder.clear()
        done.set()

    holder[0].submit(drop_the_pool)
    assert done.wait(PATIENCE)
    assert wait_until(lambda: threads_named("selfdrop") == [], PATIENCE), threads_named("selfdrop")
    # The process goes on working with new pools.
    with _lateral.Pool(2, "after") as pool:
        for _ in range(10):
            pool.submit(Counter().add, has_return_value=True)


def test_a_pool_freed_by_the_end_of_its_own_batch_ends_cleanly():
    # Nobody keeps the pool or the batch: the last ticket's worker drops the
    # batch, which drops the pool, inside that worker.
    for _ in range(50):
        pool = _lateral.Pool(2, "batchdrop")
        pool.map(lambda x: x, range(100))
        del pool
    assert wait_until(lambda: threads_named("batchdrop") == [], PATIENCE), \
        threads_named("batchdrop")
    with _lateral.Pool(2, "after") as pool:
        assert pool.map(lambda x: x * 2, range(10)).result(PATIENCE) == list(range(0, 20, 2))


def test_finish_runs_tasks_queued_during_the_drain_then_leaves_no_thread():
    # A pool's exit calls finish(): the task that leaves the pool idle closes
    # it, so its thread exits at once.  Tasks queued by running tasks still
    # run, and finish() returns only once every thread has gone.
    pool = _lateral.Pool(3, "drain")
    ran = Counter()

    def link(left):
        ran.add()
        if left:
            pool.submit(link, (left - 1,))

    for _ in range(3):
        pool.submit(link, (40,))
    pool.finish(PATIENCE)
    assert pool.errors == [] and ran.value == 3 * 41
    assert pool.closed and pool.threads == 0
    assert threads_named("drain") == []
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(ran.add)
    pool.close()


def test_finish_that_times_out_leaves_the_pool_to_close():
    gate = threading.Event()
    ran = Counter()
    pool = _lateral.Pool(2, "slowdrain")

    def held():
        gate.wait(PATIENCE)

    pool.submit(held)
    with pytest.raises(_lateral.PoolTimeoutError, match="1 left"):
        pool.finish(0.05)
    # Still open for the running task's sake: the user may queue more.
    pool.submit(ran.add, has_return_value=True)
    gate.set()
    pool.close()
    assert pool.errors == [] and ran.value == 1 and pool.threads == 0
    assert threads_named("slowdrain") == []
