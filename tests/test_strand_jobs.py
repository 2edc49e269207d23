"""What users of a job runner expect, on every store: retries with
exponential backoff, a time limit per task, delayed tasks, result expiry,
cancelling a task no reader has claimed, one log line per outcome."""
import logging
import os
import threading
import time

import pytest

import strand
import strand_jobs_support as jobs
from strand_support import make_store, redis_server, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def redis_url():
    pytest.importorskip("redis")
    with redis_server() as url:
        yield url


@pytest.fixture(params=["dict", "sqlite", "redis"])
def store(request, tmp_path):
    return make_store(request.param, tmp_path, request)


def _reader(store, *functions, **kwargs):
    return strand.StoreTaskReader(store, functions=list(functions) or None, **kwargs)


# --- retries -----------------------------------------------------------------------

def test_a_failed_task_is_retried_with_exponential_backoff(store, tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    writer = strand.StoreTaskWriter(jobs.fail_until, store, retries=3, retry_delay=0.01)
    task = writer(str(calls), 3)
    with _reader(store, jobs.fail_until):
        assert task.result(60) == 3
    record = task.record
    assert record["status"] == "complete" and record["failures"] == 2
    assert record["attempts"] == 3 and "call 2 fails" in record["last_error"]


def test_the_backoff_doubles_after_each_failure(store, tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    task = strand.StoreTaskWriter(jobs.fail_until, store, retries=2, retry_delay=5)(
        str(calls), 99)
    reader = _reader(store, jobs.fail_until)
    assert reader.run_pending() == 1
    first = task.record
    assert first["status"] == "new" and first["failures"] == 1
    assert first["eta"] - first["failed_at"] == pytest.approx(5)
    assert reader.run_pending() == 0  # not due for 5 s
    _make_due(store, task.id)
    assert reader.run_pending() == 1
    second = task.record
    assert second["failures"] == 2 and second["eta"] - second["failed_at"] == pytest.approx(10)
    _make_due(store, task.id)
    assert reader.run_pending() == 1
    last = task.record
    assert last["status"] == "error" and last["failures"] == 3
    with pytest.raises(strand.StoreTaskError, match="call 3 fails"):
        task.result(0)


def _make_due(store, task_id):
    """Rewrite a waiting retry as due now (as the clock would, 5 s later)."""
    record = dict(store[task_id])
    record["eta"] = time.time() - 1
    record.update(status="new", task_status="new")
    store[task_id] = record


def test_a_refused_task_is_not_retried(store):
    task = strand.StoreTaskWriter(jobs.plus, store, retries=5)(1)
    assert strand.StoreTaskReader(store, functions={}).run_pending() == 1
    assert task.record["error_type"] == "TaskRefused" and task.status == "error"


# --- time limits -------------------------------------------------------------------

def test_a_thread_task_over_its_time_limit_is_marked_error(store, tmp_path):
    gate = str(tmp_path / "gate")
    task = strand.StoreTaskWriter(jobs.gate, store, time_limit=0.2)(gate, "late")
    reader = _reader(store, jobs.gate).listen()
    try:
        error = task.exception(60)
        assert isinstance(error, strand.StoreTaskError)
        assert error.error_type == "TimeLimitExceeded"
        assert "longer than its time_limit of 0.2 s" in str(error)
        open(gate, "w").close()  # the thread returns; its result is dropped
        wait_until(lambda: not reader.running_tasks())
    finally:
        open(gate, "w").close()
        reader.stop(30)
    assert task.record["error_type"] == "TimeLimitExceeded" and "result" not in task.record


def test_a_process_task_over_its_time_limit_is_killed(tmp_path):
    store = strand.SqliteStore(tmp_path / "p.db")
    pid_file = str(tmp_path / "pid")
    # the limit leaves time for a busy machine to start the forkserver and the child
    writer = strand.StoreTaskWriter(jobs.write_pid_and_sleep, store, time_limit=5.0,
                                    run_in="process")
    task = writer(pid_file, 120)
    with _reader(store, jobs.write_pid_and_sleep) as reader:
        error = task.exception(60)
        assert error.error_type == "TimeLimitExceeded" and "process was killed" in str(error)
        wait_until(lambda: not reader.running_tasks())
    pid = int(open(pid_file).read())
    assert pid != os.getpid()
    wait_until(lambda: not _alive(pid))


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_process_task_runs_in_another_process(tmp_path):
    store = strand.SqliteStore(tmp_path / "p.db")
    task = strand.StoreTaskWriter(jobs.pid, store, run_in="process")()
    strand.StoreTaskReader(store, functions=[jobs.pid]).run_pending()
    assert task.result(0) != os.getpid()


# --- delayed tasks -----------------------------------------------------------------

def test_a_delayed_task_waits_for_its_time(store):
    writer = strand.StoreTaskWriter(jobs.plus, store)
    later = writer.submit((1, 1), delay=3600)
    now = writer.submit((2, 2), eta=time.time() - 1)
    reader = _reader(store, jobs.plus)
    assert reader.run_pending() == 1
    assert now.result(0) == 4 and later.status == "new"
    assert later.record["eta"] > time.time() + 3000


def test_a_listening_reader_runs_a_delayed_task_once_due(store):
    task = strand.StoreTaskWriter(jobs.plus, store).submit((20, 22), delay=0.3)
    with _reader(store, jobs.plus, max_poll_interval=0.05):
        assert task.result(60) == 42
    record = task.record
    assert record["started"] >= record["eta"]


def test_submit_checks_its_options():
    writer = strand.StoreTaskWriter(jobs.plus, {})
    with pytest.raises(TypeError, match="unknown options"):
        writer.submit((1,), countdown=3)
    with pytest.raises(TypeError, match="not both"):
        writer.submit((1,), delay=1, eta=time.time())
    with pytest.raises(ValueError, match="retries must be a number >= 0"):
        writer.submit((1,), retries=-1)
    with pytest.raises(TypeError, match="eta must be"):
        writer.submit((1,), eta="tomorrow")
    with pytest.raises(ValueError, match="run_in"):
        strand.StoreTaskWriter(jobs.plus, {}, run_in="gpu")
    with pytest.raises(TypeError, match="time_limit"):
        strand.StoreTaskWriter(jobs.plus, {}, time_limit="1s")


def test_submit_options_replace_the_writers(store):
    writer = strand.StoreTaskWriter(jobs.plus, store, retries=2, time_limit=30)
    record = writer.submit((1, 2), kwargs={}, retries=5, task_id="opts").record
    assert record["retries"] == 5 and record["time_limit"] == 30 and record["id"] == "opts"
    assert list(record["args"]) == [1, 2]


# --- result expiry -----------------------------------------------------------------

def test_a_finished_record_expires_after_result_ttl(store):
    writer = strand.StoreTaskWriter(jobs.plus, store, result_ttl=0.3)
    task = writer(1, 2)
    kept = strand.StoreTaskWriter(jobs.plus, store)(3, 4)
    with _reader(store, jobs.plus, max_poll_interval=0.05):
        assert task.result(60) == 3 and kept.result(60) == 7
        assert task.record["expires"] >= task.record["finished"] + 0.3 - 1e-6
        wait_until(lambda: task.id not in store, timeout=30)
    with pytest.raises(LookupError, match="no longer in the store"):
        task.status
    assert kept.result(0) == 7 and task.id not in list(store)


# --- cancelling --------------------------------------------------------------------

def test_a_task_not_yet_claimed_can_be_cancelled(store):
    writer = strand.StoreTaskWriter(jobs.plus, store)
    cancelled, other = writer(1), writer(2)
    assert cancelled.cancel() is True
    assert cancelled.done() and cancelled.cancelled() and cancelled.status == "error"
    with pytest.raises(strand.CancelledTask):
        cancelled.result(0)
    assert _reader(store, jobs.plus).run_pending() == 1
    assert other.result(0) == 2 and cancelled.record["error_type"] == "TaskCancelled"
    assert cancelled.cancel() is False  # already ended
    assert other.cancel() is False and not other.cancelled()


def test_a_running_task_cannot_be_cancelled(store, tmp_path):
    gate, started = str(tmp_path / "gate"), tmp_path / "started"
    started.mkdir()
    task = strand.StoreTaskWriter(jobs.announce_then_gate, store)(str(started), "ran", gate)
    reader = _reader(store, jobs.announce_then_gate).listen()
    try:
        wait_until(lambda: os.listdir(started) == ["ran"])
        assert task.status == "running" and task.cancel() is False
    finally:
        open(gate, "w").close()
        reader.stop(30)
    assert task.result(0) == "ran"


# --- log lines ---------------------------------------------------------------------

def test_one_log_line_per_task_outcome(store, caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="strand")
    calls = tmp_path / "calls"
    calls.mkdir()
    good = strand.StoreTaskWriter(jobs.plus, store)(1, 1)
    bad = strand.StoreTaskWriter(jobs.fail_until, store, retries=1, retry_delay=0.01)(
        str(calls), 99)
    with _reader(store, jobs.plus, jobs.fail_until):
        assert good.result(60) == 2
        assert isinstance(bad.exception(60), strand.StoreTaskError)
    about = lambda task: [r for r in caplog.records if task.id in r.getMessage()]
    assert [r.levelname for r in about(good)] == ["INFO"]
    assert "complete in" in about(good)[0].getMessage()
    lines = [r.getMessage() for r in about(bad)]
    assert len(lines) == 2, lines  # the failure that is retried, then the last one
    assert "retry 1 of 1" in lines[0] and "failed: RuntimeError: call 2 fails" in lines[1]


def test_waiting_for_a_result_is_woken_not_polled(store):
    """A writer waiting in result() is woken by the reader's outcome: the
    wait ends long before the 1 s safety look would."""
    task = strand.StoreTaskWriter(jobs.plus, store)(1, 2)
    done = threading.Event()
    outcome = []

    def wait():
        outcome.append(task.result(60))
        done.set()

    waiter = threading.Thread(target=wait)
    waiter.start()
    with _reader(store, jobs.plus):
        assert done.wait(60)
    waiter.join(10)
    assert outcome == [3]
