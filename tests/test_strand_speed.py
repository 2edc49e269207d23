"""How the reader talks to its store: it blocks instead of polling, claims
several tasks per call, writes several outcomes per call, and keeps one
watch thread however many tasks run.  Counts of calls, never timings."""
import os
import threading
import time

import pytest

import strand
import strand_jobs_support as jobs
from strand_support import make_store, redis_server, wait_until

pytestmark = pytest.mark.timeout(120)


class Counting:
    """Wraps a store's method and records what each call returned."""

    def __init__(self, store, name):
        self.calls = []
        original = getattr(store, name)

        def counted(*args, **kwargs):
            result = original(*args, **kwargs)
            self.calls.append(result)
            return result
        setattr(store, name, counted)


@pytest.fixture(scope="module")
def redis_url():
    pytest.importorskip("redis")
    with redis_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    return make_store(request.param, tmp_path, request)


def test_an_idle_reader_blocks_instead_of_polling(store):
    claims = Counting(store, "claim_tasks")
    reader = strand.StoreTaskReader(store, functions=[jobs.plus], poll_interval=0.001,
                                    max_poll_interval=0.5).listen()
    try:
        time.sleep(1.5)  # idle: a poller at 1 ms would call hundreds of times
        idle_calls = len(claims.calls)
        task = strand.StoreTaskWriter(jobs.plus, store)(1, 2)
        assert task.result(30) == 3
    finally:
        reader.stop(30)
    assert 1 <= idle_calls <= 10, idle_calls


_returned = []


def note_return(value):
    _returned.append(value)
    return value


def _finisher_waits_for_returns(store, count):
    """Hold the finisher thread's first write until ``count`` task functions
    have returned, so that outcomes queue behind it whatever the machine's
    load (a fast write could otherwise take each one alone)."""
    held_once = []
    for name in ("finish_task", "finish_tasks"):
        original = getattr(store, name)

        def held(*args, _original=original, **kwargs):
            if threading.current_thread().name == "strand-finisher" and not held_once:
                held_once.append(True)
                wait_until(lambda: len(_returned) >= count, timeout=30)
            return _original(*args, **kwargs)
        setattr(store, name, held)


def test_claims_and_finishes_come_several_per_call(store):
    _returned.clear()
    claims = Counting(store, "claim_tasks")
    finishes = Counting(store, "finish_tasks")
    _finisher_waits_for_returns(store, 4)
    writer = strand.StoreTaskWriter(note_return, store)
    tasks = [writer(i) for i in range(40)]
    with strand.StoreTaskReader(store, functions=[note_return], concurrency=4):
        assert [task.result(60) for task in tasks] == list(range(40))
    assert max(len(claimed) for claimed in claims.calls) > 1
    written = sum(len(done) for done in finishes.calls)
    assert written <= 40 and max(len(done) for done in finishes.calls) > 1


def test_one_watch_thread_however_many_tasks_run(store, tmp_path):
    started, gate = tmp_path / "started", str(tmp_path / "gate")
    started.mkdir()
    writer = strand.StoreTaskWriter(jobs.announce_then_gate, store)
    tasks = [writer(str(started), f"t{i}", gate) for i in range(6)]
    reader = strand.StoreTaskReader(store, functions=[jobs.announce_then_gate],
                                    concurrency=6, lease=5.0).listen()
    try:
        wait_until(lambda: len(os.listdir(started)) == 6)
        names = [thread.name for thread in threading.enumerate()]
        assert names.count(f"strand-watch-{reader.name}") == 1, names
        assert not any("heartbeat" in name for name in names), names
    finally:
        open(gate, "w").close()
        reader.stop(30)
    assert sorted(task.result(0) for task in tasks) == [f"t{i}" for i in range(6)]
