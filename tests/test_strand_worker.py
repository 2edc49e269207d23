"""A reader running N tasks at once, and the ``strand`` command: ``worker``
(stops on SIGTERM/SIGINT after its running tasks), ``info``, ``retry``,
``purge``."""
import os
import signal
import subprocess
import sys
import threading
import types

import _lateral_sync
import pytest

import strand
import strand_jobs_support as jobs
from common_support import RaisesAsWithBegins
from strand_support import HERE, make_store, redis_server, wait_until

pytestmark = pytest.mark.timeout(120)

SECRET = "a shared secret, 32 bytes long.."


@pytest.fixture(params=["dict", "sqlite"])
def store(request, tmp_path):
    return make_store(request.param, tmp_path, request)


def test_concurrency_runs_n_tasks_at_once(store):
    meeting = jobs.Meeting(4)
    writer = strand.StoreTaskWriter(meeting.meet, store)
    tasks = [writer(i) for i in range(4)]
    # the four tasks only get past the barrier if all four run at once
    with strand.StoreTaskReader(store, functions={"meet": meeting.meet}, concurrency=4):
        assert [task.result(60) for task in tasks] == [0, 1, 2, 3]
    assert meeting.most == 4


def test_concurrency_is_a_ceiling(store):
    meeting = jobs.Meeting(1)
    writer = strand.StoreTaskWriter(meeting.count, store)
    tasks = [writer(i, 0.02) for i in range(12)]
    with strand.StoreTaskReader(store, functions={"count": meeting.count}, concurrency=3):
        assert [task.result(60) for task in tasks] == list(range(12))
    assert 1 <= meeting.most <= 3


def test_concurrency_must_be_a_positive_int():
    with pytest.raises(ValueError, match="concurrency"):
        strand.StoreTaskReader({}, concurrency=0)
    with pytest.raises(TypeError, match="concurrency"):
        strand.StoreTaskReader({}, concurrency="4")


def test_stop_stops_claiming_and_finishes_the_running_tasks(store, tmp_path):
    started, gate = tmp_path / "started", str(tmp_path / "gate")
    started.mkdir()
    writer = strand.StoreTaskWriter(jobs.announce_then_gate, store)
    running = [writer(str(started), f"t{i}", gate) for i in range(2)]
    queued = [writer(str(started), f"q{i}", gate) for i in range(3)]
    reader = strand.StoreTaskReader(store, functions=[jobs.announce_then_gate],
                                    concurrency=2).listen()
    wait_until(lambda: len(os.listdir(started)) == 2)
    stopper = threading.Thread(target=reader.stop)
    stopper.start()
    wait_until(lambda: not reader.listening)  # it no longer claims...
    assert stopper.is_alive()  # ...but waits for its running tasks
    open(gate, "w").close()
    stopper.join(30)
    assert not stopper.is_alive()
    assert [task.result(0) for task in running] == ["t0", "t1"]
    assert [task.status for task in queued] == ["new"] * 3
    assert sorted(os.listdir(started)) == ["t0", "t1"]


def test_a_reader_never_takes_its_locks_where_a_signal_could_leave_them_held(store, monkeypatch):
    # Stopping a reader (Ctrl-C's work) runs in the program's thread, and
    # every pool thread needs the reader's locks to end its task: left held
    # by a signal raising as a with block began (3.14), they would hang both.
    fake_threading = types.SimpleNamespace(**vars(threading))
    fake_threading.Lock = RaisesAsWithBegins
    monkeypatch.setattr(strand.reader, "threading", fake_threading)
    monkeypatch.setattr(sys.modules["strand._running"], "threading", fake_threading)
    monkeypatch.setattr(_lateral_sync, "threading", fake_threading)
    meeting = jobs.Meeting(1)
    # A time limit starts the reader's watch thread.
    writer = strand.StoreTaskWriter(meeting.count, store, time_limit=60)
    tasks = [writer(i, 0.01) for i in range(6)]
    reader = strand.StoreTaskReader(store, functions={"count": meeting.count},
                                    concurrency=2).listen()
    assert [task.result(60) for task in tasks] == list(range(6))
    # A task's slot is released just after its outcome is written.
    wait_until(lambda: reader.running_tasks() == [])
    assert reader.stop(60)
    # run_pending runs tasks and writes their outcomes in this thread.
    more = [writer(i, 0) for i in range(6, 8)]
    assert reader.run_pending() == 2
    assert [task.result(0) for task in more] == [6, 7]


def test_a_plain_mapping_never_takes_its_claim_lock_where_a_signal_could_leave_it_held(
        monkeypatch):
    # Every reader of the process claims and finishes under that lock; the
    # program's thread cancels, claims and finishes there too (run_pending).
    monkeypatch.setattr(strand.stores.mapping, "_CLAIM_LOCK",
                        RaisesAsWithBegins(threading.RLock))
    store = {}
    writer = strand.StoreTaskWriter(jobs.plus, store)
    cancelled = writer(0, 0)
    tasks = [writer(i, 10) for i in range(4)]
    assert cancelled.cancel()
    reader = strand.StoreTaskReader(store, functions=[jobs.plus], concurrency=2)
    assert reader.run_pending() == 4
    assert [task.result(0) for task in tasks] == [10, 11, 12, 13]
    assert cancelled.cancelled()


def test_a_sqlite_store_never_takes_its_file_lock_where_a_signal_could_leave_it_held(
        tmp_path, monkeypatch):
    # The program's thread writes tasks; every reader thread of the process
    # takes the same lock to claim and finish them.
    store = strand.SqliteStore(tmp_path / "s.db")
    monkeypatch.setitem(sys.modules["strand.stores.sqlite"]._FILE_LOCKS, store.path,
                        RaisesAsWithBegins())
    writer = strand.StoreTaskWriter(jobs.plus, store)
    with strand.StoreTaskReader(store, functions=[jobs.plus], concurrency=2):
        assert [writer(i, 10).result(60) for i in range(3)] == [10, 11, 12]
    assert strand.StoreTaskReader(store, functions=[jobs.plus]).run_pending() == 0


# --- the worker command ------------------------------------------------------------

class Worker:
    """``python -m strand worker ...`` in a child process; its stderr lines
    are collected in ``lines``."""

    def __init__(self, *args, env=None):
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [HERE, os.environ.get("PYTHONPATH", "")]), **(env or {}))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "strand", "worker", *args], cwd=HERE, env=environment,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self):
        for line in self.process.stderr:
            self.lines.append(line)

    def saw(self, text):
        return any(text in line for line in self.lines)

    def wait(self, timeout=30):
        code = self.process.wait(timeout)
        self._reader.join(10)
        return code

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_worker_runs_tasks_and_stops_after_its_running_tasks_on_a_signal(tmp_path, signum):
    path, gate = str(tmp_path / "jobs.db"), str(tmp_path / "gate")
    started = tmp_path / "started"
    started.mkdir()
    worker = Worker(path, "--import", "strand_jobs_support", "--concurrency", "2")
    try:
        assert strand.StoreTaskWriter(jobs.plus, path)(40, 2).result(60) == 42
        gated = strand.StoreTaskWriter(jobs.announce_then_gate, path)(str(started), "g", gate)
        wait_until(lambda: os.listdir(started) == ["g"], timeout=60)
        worker.process.send_signal(signum)
        wait_until(lambda: worker.saw("stopping"), timeout=30)
        late = strand.StoreTaskWriter(jobs.plus, path)(1, 1)
        assert worker.process.poll() is None  # the gated task still runs
        open(gate, "w").close()
        assert worker.wait() == 0, "".join(worker.lines)
    finally:
        worker.kill()
    assert gated.result(0) == "g"
    assert late.status == "new"  # claimed by no one: the worker had stopped claiming
    assert worker.saw("complete in"), "".join(worker.lines)  # one log line per task


def test_worker_secret_env_lets_it_run_signed_pickled_functions(tmp_path):
    path = str(tmp_path / "signed.db")
    worker = Worker(path, "--secret-env", "STRAND_TEST_SECRET",
                    env={"STRAND_TEST_SECRET": SECRET})
    try:
        writer = strand.StoreTaskWriter(jobs.pid, path, pickle_func=True, secret=SECRET)
        assert writer().result(60) == worker.process.pid
    finally:
        worker.process.send_signal(signal.SIGTERM)
        assert worker.wait() == 0


def test_worker_refuses_a_missing_secret_variable(tmp_path):
    worker = Worker(str(tmp_path / "x.db"), "--secret-env", "STRAND_NO_SUCH_VARIABLE")
    assert worker.wait() == 1
    assert worker.saw("STRAND_NO_SUCH_VARIABLE is not set")


def test_worker_refuses_a_module_it_cannot_import(tmp_path):
    worker = Worker(str(tmp_path / "x.db"), "--import", "no_such_module_here")
    assert worker.wait() == 1 and worker.saw("--import no_such_module_here")


def test_worker_on_a_redis_namespace(tmp_path):
    pytest.importorskip("redis")
    with redis_server() as url:
        location = f"{url}?namespace=cli-jobs"
        worker = Worker(location, "--import", "strand_jobs_support", "--concurrency", "3")
        try:
            store = strand.RedisStore(url, namespace="cli-jobs")
            tasks = [strand.StoreTaskWriter(jobs.plus, store)(i, i) for i in range(6)]
            assert [task.result(60) for task in tasks] == [0, 2, 4, 6, 8, 10]
        finally:
            worker.process.send_signal(signal.SIGTERM)
            assert worker.wait() == 0


def test_strand_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "strand")
    if not os.path.exists(script):
        pytest.skip("the package is not installed with its scripts in this environment")
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "worker" in proc.stdout


# --- info, retry, purge ------------------------------------------------------------

def _strand(*args):
    return subprocess.run([sys.executable, "-m", "strand", *args], capture_output=True,
                          text=True, timeout=60, cwd=HERE)


def _finished_store(tmp_path):
    path = str(tmp_path / "admin.db")
    good = [strand.StoreTaskWriter(jobs.plus, path)(i) for i in range(3)]
    calls = tmp_path / "calls"
    calls.mkdir()
    bad = strand.StoreTaskWriter(jobs.fail_until, path)(str(calls), 99)
    strand.StoreTaskReader(path, functions=[jobs.plus, jobs.fail_until]).run_pending()
    strand.StoreTaskWriter(jobs.plus, path)(5, task_id="waiting")
    return path, good, bad


def test_info_prints_counts_by_status_and_the_last_errors(tmp_path):
    path, _, bad = _finished_store(tmp_path)
    proc = _strand("info", path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.split() == ["complete", "3"] for line in lines), proc.stdout
    assert any(line.split() == ["error", "1"] for line in lines), proc.stdout
    assert any(line.split() == ["new", "1"] for line in lines), proc.stdout
    assert any(bad.id in line and "RuntimeError: call 1 fails" in line for line in lines)


def test_retry_queues_failed_tasks_again(tmp_path):
    path, _, bad = _finished_store(tmp_path)
    proc = _strand("retry", path, bad.id)
    assert proc.returncode == 0 and "queued again: 1" in proc.stdout, proc.stderr
    assert bad.status == "new"
    assert _strand("retry", path, "waiting").returncode == 1  # not a failed task
    assert _strand("retry", path).returncode == 1  # nothing named


def test_retry_all_and_purge(tmp_path):
    path, good, bad = _finished_store(tmp_path)
    proc = _strand("purge", path, "--status", "complete")
    assert proc.returncode == 0 and "deleted: 3" in proc.stdout, proc.stderr
    store = strand.SqliteStore(path)
    assert all(task.id not in store for task in good) and bad.id in store
    assert "queued again: 1" in _strand("retry", path, "--all").stdout
    assert "deleted: 0" in _strand("purge", path, "--older-than", "3600").stdout
    assert store["waiting"]["status"] == "new"


def test_a_store_that_cannot_be_opened_is_a_clear_failure(tmp_path):
    proc = _strand("info", str(tmp_path / "no-such-dir" / "x.db"))
    assert proc.returncode == 1 and "cannot open the store" in proc.stderr
