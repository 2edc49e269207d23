"""RedisStore against a real redis-server on a loopback port."""
import os

import pytest

import strand
from strand_support import (ReaderProcess, add, fail, record_run, redis_server, rendezvous,
                            stall_first_attempt, wait_until)

pytestmark = pytest.mark.timeout(120)

pytest.importorskip("redis", reason="the redis client library is not installed (pip install redis)")


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url


@pytest.fixture
def url(redis_url, request):
    """The server's URL and a namespace of this test's own: tests do not see
    each other's tasks."""
    return redis_url, request.node.name.replace("[", "_").replace("]", "")


def _store(url):
    base, namespace = url
    return strand.RedisStore(base, namespace=namespace)


def test_redis_store_is_a_mutable_mapping(url):
    store = _store(url)
    store["a"] = {"status": "complete", "args": [1, b"\x01"], "result": {"k": [2.5]}}
    store["b"] = {"status": "complete"}
    assert list(store) == ["a", "b"] and len(store) == 2 and "a" in store
    assert store["a"] == {"status": "complete", "args": [1, b"\x01"], "result": {"k": [2.5]}}
    del store["a"]
    assert "a" not in store and list(store) == ["b"]
    with pytest.raises(KeyError):
        store["a"]


def test_closing_a_store_while_a_writer_waits_prints_no_thread_error(url, monkeypatch):
    # close() disconnects the connection the outcome thread is reading.
    import threading
    import time
    errors = []
    monkeypatch.setattr(threading, "excepthook", errors.append)
    before = set(threading.enumerate())
    for _ in range(3):
        store = _store(url)
        store.outcome_waiter().subscribe("some-task")  # starts the outcome thread
        time.sleep(0.3)  # inside its read
        store.close()
    ours = [t for t in set(threading.enumerate()) - before
            if t.name == "strand-redis-outcomes"]
    assert ours
    wait_until(lambda: not any(t.is_alive() for t in ours))
    assert [f"{e.exc_type.__name__}: {e.exc_value}" for e in errors] == []


def test_writer_and_in_process_reader(url):
    store = _store(url)
    writer = strand.StoreTaskWriter(add, store)
    tasks = [writer(i, 10) for i in range(5)] + [strand.StoreTaskWriter(fail, store)("bad")]
    reader = strand.StoreTaskReader(store, lease=5.0).listen()
    try:
        assert [task.result(30) for task in tasks[:5]] == [10, 11, 12, 13, 14]
        assert isinstance(tasks[5].exception(30), strand.StoreTaskError)
    finally:
        reader.stop()
    record = store[tasks[0].id]
    assert record["status"] == "complete" and record["reader"] == reader.name
    assert record["attempts"] == 1 and store[tasks[5].id]["status"] == "error"


def test_a_record_rewritten_as_new_is_still_run_once(url):
    store = _store(url)
    task = strand.StoreTaskWriter(add, store)(1, 1)
    store[task.id] = store[task.id]  # a second stream entry for the same task
    reader = strand.StoreTaskReader(store)
    assert reader.run_pending() == 1 and task.result(0) == 2


def test_two_reader_processes_run_every_task_exactly_once(url, tmp_path):
    base, namespace = url
    store = _store(url)
    log, meeting = tmp_path / "runs.log", tmp_path / "meeting"
    meeting.mkdir()
    meetings = [strand.StoreTaskWriter(rendezvous, store)(str(meeting), 2) for _ in range(2)]
    writer = strand.StoreTaskWriter(record_run, store)
    tasks = [writer(str(log), f"t{i}", 0.002) for i in range(60)]
    readers = [ReaderProcess(base, namespace=namespace) for _ in range(2)]
    try:
        assert {task.result(60) for task in meetings} == {reader.pid for reader in readers}
        assert [task.result(60) for task in tasks] == [f"t{i}" for i in range(60)]
    finally:
        for reader in readers:
            assert reader.stop() == 0
    tags = [line.split()[0] for line in log.read_text().splitlines()]
    assert sorted(tags) == sorted(f"t{i}" for i in range(60))
    assert all(store[task.id]["attempts"] == 1 for task in tasks)


def test_task_of_a_killed_reader_is_run_again_after_its_lease(url, tmp_path):
    base, namespace = url
    store = _store(url)
    marker = str(tmp_path / "marker")
    task = strand.StoreTaskWriter(stall_first_attempt, store)(marker)
    first = ReaderProcess(base, lease=1.0, namespace=namespace, name="first")
    wait_until(lambda: os.path.exists(marker), timeout=30)
    assert task.status == "running" and store[task.id]["reader"] == "first"
    first.kill()
    second = ReaderProcess(base, lease=1.0, namespace=namespace, name="second")
    try:
        assert task.result(60) == f"recovered by {second.pid}"
    finally:
        second.stop()
    record = store[task.id]
    assert record["attempts"] == 2 and record["reader"] == "second"


def test_a_live_reader_keeps_its_claim_past_the_lease(url, tmp_path):
    """The heartbeat renews the lease: a second reader must not steal a task
    that runs longer than the lease."""
    store = _store(url)
    log = tmp_path / "runs.log"
    task = strand.StoreTaskWriter(record_run, store)(str(log), "slow", 3.0)
    first = strand.StoreTaskReader(store, lease=1.0, max_poll_interval=0.05).listen()
    wait_until(lambda: task.status == "running", timeout=30)
    second = strand.StoreTaskReader(store, lease=1.0, max_poll_interval=0.05).listen()
    try:
        assert task.result(30) == "slow"
    finally:
        first.stop()
        second.stop()
    assert log.read_text().count("slow") == 1
    assert store[task.id]["attempts"] == 1 and second.completed == 0


def test_redis_url_store_location(url):
    base, _ = url
    writer = strand.StoreTaskWriter(add, base)
    assert isinstance(writer.store, strand.RedisStore)
    task = writer(2, 2)
    strand.StoreTaskReader(base).run_pending()
    assert task.result(0) == 4
