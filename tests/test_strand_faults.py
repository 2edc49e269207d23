"""Faults found by an adversarial run of the store reader (issue 11):
records that cannot be decoded, malformed fields, a password in the URL,
a signed record copied under another key, Redis down at start."""
import logging
import shutil
import sqlite3
import subprocess

import pytest

import strand
from strand_support import add, free_port, make_store, redis_server, touch, wait_until

pytestmark = pytest.mark.timeout(120)

SECRET = b"a shared secret, 32 bytes long.."


def _raw_sqlite_row(path, task_id, text):
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO strand_tasks (id, status, record) VALUES (?, 'new', ?)",
                     (task_id, text))


@pytest.mark.parametrize("text, reason", [("{not json", "not valid JSON"),
                                          ("[1, 2]", "JSON list, not an object"),
                                          ('"text"', "JSON str, not an object")])
def test_sqlite_record_that_cannot_be_decoded_is_marked_error_and_the_queue_moves_on(
        tmp_path, text, reason):
    path = str(tmp_path / "bad.db")
    store = strand.SqliteStore(path)
    _raw_sqlite_row(path, "broken", text)
    task = strand.StoreTaskWriter(add, store)(1, 2)
    with strand.StoreTaskReader(store, functions=[add]):
        assert task.result(30) == 3
    record = store["broken"]
    assert record["status"] == "error" and record["error_type"] == "BadRecord"
    assert reason in record["error_message"] and record["raw_record"] == text


def test_sqlite_run_pending_passes_a_bad_record(tmp_path):
    path = str(tmp_path / "bad.db")
    store = strand.SqliteStore(path)
    _raw_sqlite_row(path, "broken", "{")
    task = strand.StoreTaskWriter(add, store)(2, 2)
    assert strand.StoreTaskReader(store, functions=[add]).run_pending() == 1
    assert task.result(0) == 4 and store["broken"]["status"] == "error"


@pytest.fixture(params=["dict", "sqlite"])
def store(request, tmp_path):
    return make_store(request.param, tmp_path, request)


@pytest.mark.parametrize("field, value", [("qualname", ["a", "list"]), ("name", {"a": 1}),
                                          ("serializer", 5), ("retries", "many")])
def test_malformed_field_is_refused_once_not_reclaimed_forever(store, field, value):
    task = strand.StoreTaskWriter(add, store)(1, 1)
    record = store[task.id]
    record[field] = value
    store[task.id] = record
    reader = strand.StoreTaskReader(store, functions=[add], lease=0.5)
    assert reader.run_pending() == 1
    record = store[task.id]
    assert record["status"] == "error" and record["error_type"] == "TaskRefused"
    assert field in record["error_message"]
    assert reader.run_pending() == 0  # not claimed again


def test_signed_record_copied_under_another_key_is_refused(store, tmp_path):
    marker = tmp_path / "ran"
    writer = strand.StoreTaskWriter(touch, store, pickle_func=True, secret=SECRET)
    task = writer(str(marker))
    store["copy"] = store[task.id]  # same record, same signature, another key
    del store[task.id]
    strand.StoreTaskReader(store, functions={}, secret=SECRET).run_pending()
    assert store["copy"]["error_type"] == "TaskRefused"
    assert "signature" in store["copy"]["error_message"] and not marker.exists()


def test_signed_record_under_its_own_key_still_runs(store, tmp_path):
    marker = tmp_path / "ran"
    task = strand.StoreTaskWriter(touch, store, pickle_func=True, secret=SECRET)(str(marker))
    strand.StoreTaskReader(store, functions={}, secret=SECRET).run_pending()
    assert task.result(0) == str(marker) and marker.exists()


# --- Redis ---------------------------------------------------------------------------

redis = pytest.importorskip("redis", reason="the redis client library is not installed")


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url


def test_redis_record_that_cannot_be_decoded_is_marked_error(redis_url, request):
    store = strand.RedisStore(redis_url, namespace=request.node.name)
    client = redis.Redis.from_url(redis_url)
    key = f"{request.node.name}:task:broken"
    client.hset(key, mapping={"record": "{nope", "status": "new"})
    client.xadd(f"{request.node.name}:queue", {"id": "broken"})
    task = strand.StoreTaskWriter(add, store)(5, 5)
    with strand.StoreTaskReader(store, functions=[add]):
        assert task.result(30) == 10
    record = store["broken"]
    assert record["status"] == "error" and record["error_type"] == "BadRecord"
    assert record["raw_record"] == "{nope"


def test_redis_claims_and_outcomes_keep_non_ascii_ids_and_bytes(redis_url, request):
    # claims and outcomes travel as one JSON text per round trip: ids, values
    # and a record's raw bytes (not UTF-8 here) must come through unchanged
    namespace = request.node.name
    store = strand.RedisStore(redis_url, namespace=namespace)
    client = redis.Redis.from_url(redis_url)
    client.hset(f"{namespace}:task:raw", mapping={"record": b"\xff{", "status": "new"})
    client.xadd(f"{namespace}:queue", {"id": "raw"})
    writer = strand.StoreTaskWriter(add, store, result_ttl=60)
    tasks = [writer("t\u00e2che \u2713", "/\\\"\x00", task_id=task_id)
             for task_id in ("t\u00e2che \u2713 \"/\\ \U0001d11e", "plain")]
    with strand.StoreTaskReader(store, functions=[add], concurrency=4):
        assert [task.result(30) for task in tasks] == ["t\u00e2che \u2713/\\\"\x00"] * 2
    assert client.pttl(f"{namespace}:task:{tasks[0].id}") > 0  # result_ttl reached the script
    record = store["raw"]
    assert record["status"] == "error" and record["error_type"] == "BadRecord"
    assert "not valid JSON" in record["error_message"]


def test_redis_password_is_redacted_from_reprs_and_logs(caplog):
    caplog.set_level(logging.WARNING, logger="strand")
    url = f"redis://user:hunter2secret@127.0.0.1:{free_port()}/0"
    store = strand.RedisStore(url)
    assert "hunter2secret" not in repr(store) and "***" in repr(store)
    reader = strand.StoreTaskReader(url, max_poll_interval=0.05).listen()
    try:
        assert "hunter2secret" not in repr(reader)
        wait_until(lambda: any("cannot reach" in r.getMessage() for r in caplog.records))
    finally:
        reader.stop(10)
    assert not any("hunter2secret" in r.getMessage() for r in caplog.records)


def test_redis_store_created_while_the_server_is_down_fails_fast_with_a_clear_error():
    url = f"redis://127.0.0.1:{free_port()}/0"
    store = strand.RedisStore(url)  # does not contact the server
    with pytest.raises(strand.StoreUnavailable, match="never reached it") as info:
        store["task"] = {"status": "new"}
    assert isinstance(info.value, redis.exceptions.ConnectionError)
    with pytest.raises(strand.StoreUnavailable):
        strand.StoreTaskWriter(add, url)(1, 2)


def test_reader_started_before_redis_waits_logs_once_and_runs_when_it_comes(caplog, tmp_path):
    caplog.set_level(logging.WARNING, logger="strand")
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    reader = strand.StoreTaskReader(url, functions=[add], max_poll_interval=0.05,
                                    max_reconnect_interval=0.2).listen()
    server = None
    try:
        wait_until(lambda: any("cannot reach" in r.getMessage() for r in caplog.records))
        server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        writer = strand.StoreTaskWriter(add, strand.RedisStore(url, startup_timeout=20))
        assert writer(20, 22).result(30) == 42
        assert reader.listening
    finally:
        reader.stop(10)
        if server is not None:
            server.terminate()
            server.wait(10)
    mine = [r.getMessage() for r in caplog.records if reader.name in r.getMessage()]
    assert len([m for m in mine if "cannot reach" in m]) == 1
    assert len([m for m in mine if "again after" in m]) == 1


def test_writer_waits_for_the_server_when_told_to(redis_url):
    """reconnect_timeout applies once the store reached its server: the
    mapping operations are retried by redis-py's Retry."""
    store = strand.RedisStore(redis_url, namespace="wait", reconnect_timeout=5)
    store["a"] = {"status": "complete"}
    retry = store._client.get_retry()
    assert isinstance(retry, redis.retry.Retry) and retry.get_retries() > 3
