"""Drop-in compatibility with the published strand 0.1.8: its module paths
(``strand.taskrunning.*``, ``strand.constants``), ``run_process``,
``TaskDispatcher``, the store record's fields, ``task_id=`` and
``@as_task('store', store=None, ...)``."""
import multiprocessing
import os
import threading

import dill
import pytest

import strand
import strand.constants
import strand.taskrunning
import strand.taskrunning.base
import strand.taskrunning.coroutine
import strand.taskrunning.decorators
import strand.taskrunning.multi_dispatch
import strand.taskrunning.multiprocess
import strand.taskrunning.store_reader
import strand.taskrunning.store_writer
import strand.taskrunning.thread
import strand.taskrunning.utils
from strand_support import add, fail, make_store, redis_server, touch, touch_and_wait, wait_for_file

pytestmark = pytest.mark.timeout(120)


# --- module paths ---------------------------------------------------------------

def test_published_module_paths_hold_the_strand_objects():
    taskrunning = strand.taskrunning
    assert taskrunning.base.Taskrunner is strand.Taskrunner
    assert taskrunning.thread.ThreadTaskrunner is strand.ThreadTaskrunner
    assert taskrunning.multiprocess.MultiprocessTaskrunner is strand.MultiprocessTaskrunner
    assert taskrunning.coroutine.CoroutineTaskrunner is strand.CoroutineTaskrunner
    assert taskrunning.store_writer.StoreTaskWriter is strand.StoreTaskWriter
    assert taskrunning.store_reader.StoreTaskReader is strand.StoreTaskReader
    assert taskrunning.decorators.as_task is strand.as_task
    assert taskrunning.multi_dispatch.TaskDispatcher is strand.TaskDispatcher
    assert taskrunning.utils.run_process is strand.run_process
    assert set(taskrunning.__all__) >= {"Taskrunner", "as_task", "TaskDispatcher", "run_process",
                                        "StoreTaskWriter", "StoreTaskReader"}


def test_constants_name_the_targets():
    constants = strand.constants
    assert (constants.THREAD, constants.PROCESS, constants.SYNC, constants.STORE,
            constants.COROUTINE) == ("thread", "process", "sync", "store", "coroutine")
    resolve = strand.taskrunning.utils.resolve_runner_cls
    assert resolve(constants.THREAD) is strand.ThreadTaskrunner
    assert resolve(constants.SYNC) is strand.Taskrunner
    assert resolve(strand.CoroutineTaskrunner) is strand.CoroutineTaskrunner
    with pytest.raises(ValueError, match="unknown taskrunner target 'fiber'"):
        resolve("fiber")


def test_conditional_logger():
    lines = []
    strand.taskrunning.utils.conditional_logger(True, lines.append)("shown")
    strand.taskrunning.utils.conditional_logger(False, lines.append)("hidden")
    assert lines == ["shown"]


# --- run_process ------------------------------------------------------------------

def test_run_process_runs_the_function_for_the_block_and_stops_it(tmp_path):
    ready = tmp_path / "ready"
    with strand.run_process(touch_and_wait, (str(ready),), process_name="server",
                            is_ready=ready.exists, timeout=60) as process:
        assert ready.exists() and process.is_alive() and process.name == "server"
    assert not process.is_alive() and process.exitcode is not None


def test_run_process_waits_seconds_when_is_ready_is_a_number(tmp_path):
    with strand.run_process(touch_and_wait, (str(tmp_path / "up"),), is_ready=0.05) as process:
        assert process.is_alive()
    assert not process.is_alive()


def test_run_process_does_nothing_when_the_process_already_runs():
    asked = []
    with strand.run_process(add, process_already_running=lambda: asked.append(1) or True) \
            as process:
        assert process is None
    assert asked == [1]


def test_run_process_reports_a_child_that_exits_before_it_is_ready(tmp_path):
    with pytest.raises(RuntimeError, match="exited .* before it was ready"):
        with strand.run_process(fail, ("early",), is_ready=lambda: False, timeout=60):
            pass  # pragma: no cover


def test_run_process_without_force_kill_waits_for_the_child(tmp_path):
    done = tmp_path / "done"
    with strand.run_process(touch, (str(done),), force_kill=False) as process:
        pass
    assert done.exists() and process.exitcode == 0


def test_run_process_stops_only_its_own_process(tmp_path):
    other_ready = tmp_path / "other"
    other = multiprocessing.Process(target=touch_and_wait, args=(str(other_ready),))
    other.start()
    try:
        wait_for_file(other_ready)
        with strand.run_process(touch_and_wait, (str(tmp_path / "mine"),)) as mine:
            pass
        assert not mine.is_alive()
        assert other.is_alive()  # the published version killed every child
    finally:
        other.kill()
        other.join()


# --- TaskDispatcher ---------------------------------------------------------------

def test_dispatcher_collects_results_status_and_errors_in_dispatch_order():
    gate = threading.Event()

    def held(value):
        gate.wait(60)
        return value

    dispatcher = strand.TaskDispatcher()
    ended = []
    dispatcher.dispatch(held, args=["a"], on_end=ended.append)
    dispatcher.dispatch(fail, args=["boom"])
    dispatcher.dispatch(add, 1, kwargs={"b": 2}, target="sync")
    assert not dispatcher.complete and dispatcher.status[0] is None
    gate.set()
    assert dispatcher.run(timeout=60) is True
    assert dispatcher.results == ["a", None, 3]
    assert dispatcher.status == ["success", "error", "success"]
    assert dispatcher.errors[0] is None and isinstance(dispatcher.errors[1], ValueError)
    assert ended == ["a"]


def test_dispatcher_enqueue_runs_in_order_at_run():
    order = []

    def note(tag):
        order.append(tag)
        return tag

    dispatcher = strand.TaskDispatcher(target="sync")
    assert [dispatcher.enqueue(note, args=[tag]) for tag in "abc"] == [0, 1, 2]
    assert order == [] and not dispatcher.complete
    dispatcher.run()
    assert order == ["a", "b", "c"] and dispatcher.results == ["a", "b", "c"]


def test_dispatchers_do_not_share_their_lists_and_reset_forgets():
    first, second = strand.TaskDispatcher("sync"), strand.TaskDispatcher("sync")
    first.dispatch(add, 1)
    assert second.results == [] and first.results == [1]
    first.reset()
    assert first.results == first.status == first.errors == [] and first.complete


def test_dispatcher_check_complete_decides_and_run_times_out():
    gate = threading.Event()
    dispatcher = strand.TaskDispatcher(check_complete=lambda results, status, errors:
                                       "success" in status)
    try:
        dispatcher.dispatch(add, 1)
        dispatcher.dispatch(gate.wait, args=[60])
        assert dispatcher.run(timeout=60)
        assert dispatcher.status.count(None) == 1
        with pytest.raises(TimeoutError):
            strand.TaskDispatcher(check_complete=lambda *lists: False).run(timeout=0.01)
    finally:
        gate.set()


def test_dispatcher_check_complete_may_use_the_dispatcher():
    # check_complete runs under the dispatcher's lock; a follow-up task it
    # dispatches (or a look at .complete) must not wait for that lock.
    def check(results, status, errors):
        if status == ["success"]:
            dispatcher.dispatch(add, 2, target="sync")
        return dispatcher.status.count(None) == 0 and len(status) == 2

    dispatcher = strand.TaskDispatcher(target="sync", check_complete=check)
    dispatcher.enqueue(add, 1)
    done = []
    runner = threading.Thread(target=lambda: done.append(dispatcher.run(timeout=60)),
                              daemon=True)
    runner.start()
    runner.join(60)
    assert done == [True]
    assert dispatcher.results == [1, 2]


# --- the store record --------------------------------------------------------------

@pytest.fixture(scope="module")
def redis_url():
    pytest.importorskip("redis", reason="the redis client library is not installed")
    with redis_server() as url:
        yield url


@pytest.fixture(params=["dict", "sqlite", "redis"])
def store(request, tmp_path):
    return make_store(request.param, tmp_path, request)


def run_like_the_published_format(record):
    """What any other consumer of the store does with a record."""
    func = {"add": add}[record["name"]]
    return func(*record["init_args"], *record["args"], **record["init_kwargs"], **record["kwargs"])


def test_records_keep_the_published_writer_fields(store):
    task = strand.StoreTaskWriter(add, store, 40)(b=2)
    record = store[task.id]
    assert record["name"] == "add" and record["func"] is None
    assert (list(record["init_args"]), record["init_kwargs"]) == ([40], {})
    assert (list(record["args"]), record["kwargs"]) == ([], {"b": 2})
    assert isinstance(record["start_time"], int) and record["start_time"] > 1e12
    assert record["task_status"] == record["status"] == "new"
    assert run_like_the_published_format(record) == 42


def test_task_status_follows_every_status_the_reader_writes(store):
    seen_while_running = []

    def peek(key):
        seen_while_running.append(store[key]["task_status"])
        if key == "bad":
            raise ValueError("bad")
        return key

    writer = strand.StoreTaskWriter(peek, store)
    good = writer("good", task_id="good")
    writer("bad", task_id="bad")
    strand.StoreTaskReader(store).run_pending()
    assert seen_while_running == ["running", "running"]
    assert store["good"]["task_status"] == store["good"]["status"] == "complete"
    assert good.result(0) == "good"
    assert store["bad"]["task_status"] == store["bad"]["status"] == "error"


def test_writer_call_names_the_record_with_task_id(store):
    writer = strand.StoreTaskWriter(add, store)
    task = writer(1, 2, task_id="job-7")
    assert task.id == "job-7" == writer.task_id and store["job-7"]["args"] == [1, 2]
    writer(5, task_id="job-7")  # as in the published writer, the record is replaced
    assert store["job-7"]["args"] == [5]
    strand.StoreTaskReader(store).run_pending()
    assert task.result(0) == 5


def test_reader_merges_init_arguments_and_serialized_ones(store):
    writer = strand.StoreTaskWriter(add, store, 1, serializer="json")
    task = writer(b=41)
    assert isinstance(store[task.id]["init_args"], bytes)
    strand.StoreTaskReader(store).run_pending()
    assert task.result(0) == 42


def test_reader_refuses_a_keyword_given_twice(store):
    store["twice"] = {"id": "twice", "name": "add", "init_args": [], "init_kwargs": {"b": 1},
                      "args": [1], "kwargs": {"b": 2}, "status": "new"}
    strand.register_task(add)
    strand.StoreTaskReader(store).run_pending()
    record = store["twice"]
    assert record["task_status"] == "error" and record["error_type"] == "TaskRefused"
    assert "multiple values for keyword argument 'b'" in record["error"]


def test_records_without_init_fields_still_run(store):
    store["old"] = {"id": "old", "name": "add", "args": [2, 3], "kwargs": {}, "status": "new"}
    strand.register_task(add)
    strand.StoreTaskReader(store).run_pending()
    assert store["old"]["result"] == 5


# --- @as_task('store', store=None, ...) -------------------------------------------

def test_as_task_store_accepts_the_store_later(tmp_path):
    @strand.as_task("store", store=None, pickle_func=True)
    def stored(x):
        return x * 3

    assert stored.store is None and stored.__name__ == "stored"
    with pytest.raises(ValueError, match="has no store yet"):
        stored(1)
    stored.store = str(tmp_path / "later.sqlite3")
    assert isinstance(stored.store, strand.SqliteStore)
    task = stored(2)
    assert dill.loads(stored.store[task.id]["func"])(2) == 6
    strand.StoreTaskReader(stored.store).run_pending()
    assert task.result(0) == 6
    stored.store.close()


def test_doctest_form_of_as_task_decorates_every_target():
    def end_callback(results):
        pass

    decorated = [strand.as_task()(lambda: None),
                 strand.as_task(on_iter=print)(lambda: []),
                 strand.as_task("process", on_end=end_callback)(os.getpid),
                 strand.as_task("coroutine", yield_on_iter=False)(lambda: None),
                 strand.as_task("store", store=None, pickle_func=True)(lambda: None)]
    assert [type(runner) for runner in decorated] == [
        strand.ThreadTaskrunner, strand.ThreadTaskrunner, strand.MultiprocessTaskrunner,
        strand.CoroutineTaskrunner, strand.StoreTaskWriter]


# --- handles stand in for the published Thread and Process ------------------------

def test_handles_answer_is_alive_like_a_thread_or_process():
    gate = threading.Event()
    handle = strand.ThreadTaskrunner(gate.wait)(60)
    try:
        assert handle.is_alive()
    finally:
        gate.set()
    handle.join(60)
    assert not handle.is_alive()
    process_handle = strand.MultiprocessTaskrunner(add)(1, 2)
    process_handle.join(60)
    assert not process_handle.is_alive() and process_handle.result(0) == 3
