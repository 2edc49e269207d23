"""StoreTaskWriter and StoreTaskReader on a dict and on an SQLite file."""
import os
import threading
import time

import pytest

import strand
from strand_support import (ReaderProcess, add, fail, long_blocking_function, make_store,
                            record_run, rendezvous, stall_first_attempt, wait_until)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(params=["dict", "sqlite"])
def store(request, tmp_path):
    return make_store(request.param, tmp_path, request)


def test_writer_writes_a_task_record(store):
    before = time.time()
    writer = strand.StoreTaskWriter(add, store, 1)
    task = writer(2)
    record = store[task.id]
    assert writer.task_id == task.id == record["id"]
    assert record["name"] == "add" and record["qualname"] == "strand_support:add"
    assert list(record["init_args"]) == [1] and record["init_kwargs"] == {}
    assert list(record["args"]) == [2] and record["kwargs"] == {}
    assert record["status"] == record["task_status"] == "new"
    assert before <= record["time"] <= time.time()
    assert record["start_time"] == int(record["time"] * 1000)
    assert record["func"] is None
    assert writer.result is None and task.status == "new" and not task.done()


def test_pickle_func_stores_the_function_serialized_with_dill(store):
    import dill

    record = store[strand.StoreTaskWriter(add, store, pickle_func=True)(1, 2).id]
    assert record["func_serializer"] == "dill"
    assert dill.loads(record["func"])(1, 2) == 3


def test_reader_runs_the_task_and_writes_the_result_back(store):
    writer = strand.StoreTaskWriter(add, store)
    task = writer(2, b=3)
    reader = strand.StoreTaskReader(store)
    assert reader.run_once() is True
    record = store[task.id]
    assert record["status"] == "complete" and record["result"] == 5
    assert record["reader"] == reader.name and record["attempts"] == 1
    assert record["started"] <= record["finished"]
    assert writer.result == 5 and task.result(0) == 5 and writer.status == "complete"
    assert reader.run_once() is False


def test_failed_task_gets_error_status_and_trace(store):
    writer = strand.StoreTaskWriter(fail, store)
    task = writer("broken")
    strand.StoreTaskReader(store).run_pending()
    record = store[task.id]
    assert record["status"] == "error" and record["error_type"] == "ValueError"
    assert "Traceback" in record["error"] and "broken" in record["error"]
    with pytest.raises(strand.StoreTaskError, match="ValueError: broken") as info:
        writer.result
    assert "in fail" in info.value.trace
    assert isinstance(task.exception(0), strand.StoreTaskError)


def test_status_is_running_while_the_task_runs(store):
    started, release = threading.Event(), threading.Event()

    def gated():
        started.set()
        assert release.wait(30)
        return "done"

    task = strand.StoreTaskWriter(gated, store)()
    reader = strand.StoreTaskReader(store, functions=[gated]).listen()
    try:
        assert started.wait(30)
        assert task.status == "running"
        release.set()
        assert task.result(30) == "done"
    finally:
        release.set()
        reader.stop()


def test_read_store_starts_a_listening_reader(store):
    writer = strand.StoreTaskWriter(add, store, read_store=store)
    try:
        assert writer.reader.listening
        tasks = [writer(i, i) for i in range(5)]
        assert [task.result(30) for task in tasks] == [0, 2, 4, 6, 8]
    finally:
        writer.close()
    assert not writer.reader.listening


def test_document_reader_example_listens_for_tasks():
    task_store = {}
    writer = strand.StoreTaskWriter(long_blocking_function, task_store)
    task = writer(10, 5)

    reader = strand.StoreTaskReader(task_store)

    reader.listen()
    try:
        assert task.result(30) == [range(0, 5), range(5, 10)]  # the generator's items
    finally:
        reader.stop()


def test_writer_callbacks_run_when_the_outcome_is_written(store):
    items, ends = [], []
    writer = strand.StoreTaskWriter(_chunks, store, on_iter=items.append, on_end=ends.append)
    writer(6, 3)
    assert items == [] and ends == []  # nothing ran yet
    strand.StoreTaskReader(store).run_pending()
    wait_until(lambda: ends, timeout=30)
    assert items == [[0, 1, 2], [3, 4, 5]] and ends == [[[0, 1, 2], [3, 4, 5]]]


def test_writer_on_error_gets_the_store_task_error(store):
    errors = []
    strand.StoreTaskWriter(fail, store, on_error=errors.append)("nope")
    strand.StoreTaskReader(store).run_pending()
    wait_until(lambda: errors, timeout=30)
    assert isinstance(errors[0], strand.StoreTaskError) and "nope" in str(errors[0])


def _chunks(total, size):
    return [list(range(n, n + size)) for n in range(0, total, size)]


def test_get_task_func_resolves_the_function(store):
    calls = []
    writer = strand.StoreTaskWriter(add, store)
    task = writer(1, 2)

    def get_task_func(record):
        calls.append(record["name"])
        return lambda *args: ("resolved", sum(args))

    strand.StoreTaskReader(store, get_task_func).run_pending()
    assert calls == ["add"] and list(task.result(0)) == ["resolved", 3]


def test_get_result_replaces_reading_the_record(store):
    writer = strand.StoreTaskWriter(add, store, get_result=lambda task_id: f"custom {task_id}")
    task = writer(1, 1)
    strand.StoreTaskReader(store).run_pending()
    assert writer.result == f"custom {task.id}"


def test_each_task_runs_exactly_once_with_several_readers_in_one_process(store, tmp_path):
    log = tmp_path / "runs.log"
    writer = strand.StoreTaskWriter(record_run, store)
    tasks = [writer(str(log), f"t{i}", 0.002) for i in range(40)]
    readers = [strand.StoreTaskReader(store, max_poll_interval=0.02).listen() for _ in range(3)]
    try:
        assert [task.result(60) for task in tasks] == [f"t{i}" for i in range(40)]
    finally:
        for reader in readers:
            reader.stop()
    tags = [line.split()[0] for line in log.read_text().splitlines()]
    assert sorted(tags) == sorted(f"t{i}" for i in range(40))
    assert sum(reader.completed for reader in readers) == 40


def test_stop_is_prompt_when_idle(store):
    reader = strand.StoreTaskReader(store, max_poll_interval=5.0).listen()
    time.sleep(0.2)  # let it back off
    started = time.monotonic()
    assert reader.stop(timeout=10)
    # Waiting out the 5 s poll interval would take >= 4.8 s; stop() wakes it.
    assert time.monotonic() - started < 4.0
    assert not reader.listening


def test_serializer_pickle_with_secret_round_trips_any_object(store):
    secret = b"s" * 32
    writer = strand.StoreTaskWriter(_as_set, store, serializer="pickle", secret=secret)
    task = writer({3, 1}, extra=frozenset({2}))
    strand.StoreTaskReader(store, secret=secret).run_pending()
    assert task.result(0) == {1, 2, 3}
    assert isinstance(store[task.id]["result"], bytes)


def _as_set(values, extra=frozenset()):
    return set(values) | extra


def test_json_serializer_is_trusted_and_needs_no_secret(store):
    writer = strand.StoreTaskWriter(add, store, serializer="json")
    task = writer(20, 22)
    strand.StoreTaskReader(store).run_pending()
    assert task.result(0) == 42


def test_custom_serializer_can_be_registered(store):
    import json
    strand.register_serializer(strand.Serializer(
        "json-upper", lambda value: json.dumps(value).upper().encode(),
        lambda data: json.loads(data.decode().lower()), trusted=True))
    task = strand.StoreTaskWriter(_shout, store, serializer="json-upper")("abc")
    assert store[task.id]["args"] == b'["ABC"]'
    strand.StoreTaskReader(store).run_pending()
    assert task.result(0) == "abc!"  # the round trip lower-cases


def _shout(text):
    return text + "!"


def test_pickle_serializer_without_secret_is_refused():
    with pytest.raises(ValueError, match="needs secret"):
        strand.StoreTaskWriter(add, {}, serializer="pickle")


def test_unknown_serializer_is_refused():
    with pytest.raises(ValueError, match="unknown serializer 'yaml'"):
        strand.StoreTaskWriter(add, {}, serializer="yaml")


def test_store_must_be_a_mutable_mapping_or_a_location():
    with pytest.raises(TypeError, match="MutableMapping"):
        strand.StoreTaskWriter(add, 42)


def test_lambda_without_pickle_func_is_refused_by_the_safety_check():
    with pytest.raises(ValueError, match="lambda"):
        strand.StoreTaskWriter(lambda: 1, {})
    assert strand.StoreTaskWriter(lambda: 1, {}, pickle_func=True)


def test_write_error_goes_to_on_error(tmp_path):
    errors = []
    writer = strand.StoreTaskWriter(add, strand.SqliteStore(tmp_path / "s.db"),
                                    on_error=errors.append)
    assert writer(object()) is None
    assert isinstance(errors[0], TypeError) and "JSON" in str(errors[0])


# --- SqliteStore -----------------------------------------------------------------

def test_sqlite_store_is_a_mutable_mapping(tmp_path):
    store = strand.SqliteStore(tmp_path / "m.db")
    store["a"] = {"status": "new", "args": [1, b"\x00bytes"], "nested": {"k": [1.5, None]}}
    store["b"] = {"status": "complete"}
    assert list(store) == ["a", "b"] and len(store) == 2 and "a" in store
    assert store["a"] == {"status": "new", "args": [1, b"\x00bytes"], "nested": {"k": [1.5, None]}}
    del store["a"]
    assert list(store) == ["b"] and "a" not in store
    with pytest.raises(KeyError):
        store["a"]
    with pytest.raises(KeyError):
        del store["a"]
    assert dict(strand.SqliteStore(tmp_path / "m.db")) == {"b": {"status": "complete"}}


def test_string_store_is_an_sqlite_file(tmp_path):
    path = str(tmp_path / "by-path.db")
    writer = strand.StoreTaskWriter(add, path)
    assert isinstance(writer.store, strand.SqliteStore) and writer.store.path == path
    task = writer(3, 4)
    strand.StoreTaskReader(path).run_pending()
    assert task.result(0) == 7


def test_sqlite_in_memory_is_refused():
    with pytest.raises(ValueError, match="file path"):
        strand.SqliteStore(":memory:")


def test_sqlite_two_reader_processes_run_every_task_exactly_once(tmp_path):
    path = str(tmp_path / "shared.db")
    log, meeting = tmp_path / "runs.log", tmp_path / "meeting"
    meeting.mkdir()
    meet = strand.StoreTaskWriter(rendezvous, path)
    meetings = [meet(str(meeting), 2) for _ in range(2)]
    writer = strand.StoreTaskWriter(record_run, path)
    tasks = [writer(str(log), f"t{i}", 0.002) for i in range(60)]
    readers = [ReaderProcess(path) for _ in range(2)]
    try:
        # each reader runs one task at a time: both rendezvous tasks can only
        # finish if the two readers ran one each
        pids = {task.result(60) for task in meetings}
        assert pids == {reader.pid for reader in readers}
        assert all(task.result(60) == f"t{i}" for i, task in enumerate(tasks))
    finally:
        for reader in readers:
            assert reader.stop() == 0
    tags = [line.split()[0] for line in log.read_text().splitlines()]
    assert sorted(tags) == sorted(f"t{i}" for i in range(60))


def test_sqlite_task_of_a_killed_reader_is_recovered(tmp_path):
    path, marker = str(tmp_path / "lease.db"), str(tmp_path / "marker")
    task = strand.StoreTaskWriter(stall_first_attempt, path)(marker)
    first = ReaderProcess(path, lease=1.0)
    wait_until(lambda: os.path.exists(marker), timeout=30)
    first.kill()
    second = ReaderProcess(path, lease=1.0)
    try:
        assert task.result(60) == f"recovered by {second.pid}"
    finally:
        second.stop()
    assert task.record["attempts"] == 2


def test_reader_as_context_manager_listens_then_stops(store):
    task = strand.StoreTaskWriter(add, store)(5, 5)
    with strand.StoreTaskReader(store) as reader:
        assert reader.listening
        assert task.result(30) == 10
    assert not reader.listening


def test_register_task_makes_a_function_known_to_readers(store):
    @strand.register_task(name="renamed-sum")
    def anything(*numbers):
        return sum(numbers)

    record = {"id": "by-hand", "name": "renamed-sum", "args": [1, 2, 3], "kwargs": {},
              "status": "new", "time": time.time()}
    store["by-hand"] = record
    strand.StoreTaskReader(store).run_pending()
    assert store["by-hand"]["status"] == "complete" and store["by-hand"]["result"] == 6


def _factory_of_same():
    def same():
        return "first"
    return same


def test_a_name_shared_by_two_functions_resolves_only_by_qualified_name(store):
    def same():
        return "second"

    first = _factory_of_same()
    registry = strand.TaskRegistry([first, same])
    tasks = [strand.StoreTaskWriter(func, store)() for func in (first, same)]
    strand.StoreTaskReader(store, functions=registry).run_pending()
    assert [task.result(0) for task in tasks] == ["first", "second"]
    store["plain"] = {"id": "plain", "name": "same", "args": [], "kwargs": {},
                      "status": "new", "time": time.time()}
    strand.StoreTaskReader(store, functions=registry).run_pending()
    assert "matches several" in store["plain"]["error_message"]


def test_result_the_store_cannot_hold_becomes_an_error(tmp_path):
    store = strand.SqliteStore(tmp_path / "json.db")
    task = strand.StoreTaskWriter(_an_object, store)()
    strand.StoreTaskReader(store).run_pending()
    record = store[task.id]
    assert record["status"] == "error" and "could not be stored" in record["error_message"]


def _an_object():
    return object()
