"""A Redis server restarted under a listening StoreTaskReader (issue 5).

The server keeps its data across the restart: an append-only file fsynced
before every write is acknowledged (``--appendonly yes --appendfsync
always``).  A restart that wipes the data wipes the tasks with it, so "no task
is lost" can only be asked of a server that keeps them; without persistence
the reader still recovers and runs the tasks written afterwards
(``test_reader_recovers_from_a_restart_that_lost_the_data``).

What is guaranteed (with such a server), and asserted here:

- no task is lost: every task written before, during (the writer's call
  waits for the server, up to the store's ``reconnect_timeout``) and after
  the restart runs, and its outcome is written back;
- exactly once for a task whose outcome the server acknowledged: it never
  runs again, restart or not;
- exactly once for a task whose function ended while the server was down,
  as long as its reader keeps running: the reader keeps its claim and
  writes the outcome once the server is back;
- otherwise at-least-once: a task whose outcome was never acknowledged runs
  again after its lease -- when its reader was stopped during the outage
  (asserted below), died, or, with several readers, when the outage outlived
  the lease and another reader took the task over before the first one
  could write the outcome.  With the single reader of these tests every task
  runs exactly once;
- the reader keeps listening, retries with a backoff (a bounded number of
  attempts per second, not a busy loop), logs the outage once rather than
  once per attempt, and its ``stop()`` does not hang on a dead server.
"""
import collections
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

import strand
from strand_support import free_port, record_run, wait_until

redis = pytest.importorskip("redis", reason="the redis client library is not installed "
                                             "(pip install redis)")

pytestmark = pytest.mark.timeout(120)

LEASE = 2.0
MAX_RECONNECT_INTERVAL = 0.5
OUTAGE = 1.5  # seconds the server stays down, at least


class RedisServer:
    """A ``redis-server`` on a fixed loopback port, stopped and started
    again on that port; its data lives in ``directory``."""

    def __init__(self, binary, directory, durable=True):
        self.binary = binary
        self.directory = directory
        self.durable = durable
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        """Start the server and wait until it answers."""
        os.makedirs(self.directory, exist_ok=True)
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.durable \
            else ["--appendonly", "no"]
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--save", ""] + persistence,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        wait_until(self._answers, timeout=20)

    def stop(self, signum):
        """Send ``signum`` and wait for the process to end."""
        self.process.send_signal(signum)
        self.process.wait(20)

    def close(self):
        """Kill the server if it still runs (the fixture's finalizer)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(20)

    def _answers(self):
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited with status {self.process.returncode}")
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            return client.ping()
        except redis.exceptions.RedisError:
            return False
        finally:
            client.close()


def _die_with_parent():
    """Linux: the server gets SIGKILL if the test process dies without
    running the fixture's finalizer (killed, ``os._exit``)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def _server(tmp_path, durable):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(binary, tmp_path / "redis-data", durable=durable)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def durable_server(tmp_path):
    yield from _server(tmp_path, durable=True)


@pytest.fixture
def volatile_server(tmp_path):
    yield from _server(tmp_path, durable=False)


class CountingRedisStore(strand.RedisStore):
    """A RedisStore that records when a claim or a finish failed because
    the server could not be reached: the reader's attempts while it is down."""

    def __init__(self, *args, **kwargs):
        self.failures = []
        super().__init__(*args, **kwargs)

    def claim_task(self, reader, lease=None):
        return self._counted(super().claim_task, reader, lease)

    def finish_task(self, task_id, token, fields):
        return self._counted(super().finish_task, task_id, token, fields)

    def _counted(self, operation, *args):
        try:
            return operation(*args)
        except self.connection_errors:
            self.failures.append(time.monotonic())
            raise


def gated_record_run(log_path, tag, gate):
    """``record_run`` once the file ``gate`` exists: the test decides when
    the task ends.  It creates ``gate + '.started'`` first: a record marked
    running does not prove its reader has it (a server killed between
    running the claim and sending its reply leaves the task to its lease)."""
    open(_started(gate), "w").close()
    wait_until(lambda: os.path.exists(gate), timeout=60)
    return record_run(log_path, tag)


def _started(gate):
    return gate + ".started"


def _runs(log_path):
    if not os.path.exists(log_path):
        return collections.Counter()
    with open(log_path) as log:
        return collections.Counter(line.split()[0] for line in log)


def _submit_in_threads(writer, log_path, tags, tasks, errors):
    """One thread per call, as concurrent producers would: each call waits
    for the server."""
    def submit(tag):
        try:
            tasks[tag] = writer(log_path, tag)
        except Exception as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(tag,), daemon=True) for tag in tags]
    for thread in threads:
        thread.start()
    return threads


def _reader_messages(caplog, reader, text):
    return [record for record in caplog.records
            if reader.name in record.getMessage() and text in record.getMessage()]


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM],
                         ids=["SIGKILL", "SIGTERM"])
def test_no_task_is_lost_when_the_server_restarts(durable_server, tmp_path, caplog, stop_signal):
    caplog.set_level(logging.WARNING, logger="strand")
    log_path, gate = str(tmp_path / "runs.log"), str(tmp_path / "gate")
    writer = strand.StoreTaskWriter(record_run, strand.RedisStore(durable_server.url,
                                                                  reconnect_timeout=60))
    gated_writer = strand.StoreTaskWriter(gated_record_run, writer.store)
    reader_store = CountingRedisStore(durable_server.url)
    reader = strand.StoreTaskReader(reader_store, functions=[record_run, gated_record_run],
                                    lease=LEASE, max_poll_interval=0.05,
                                    max_reconnect_interval=MAX_RECONNECT_INTERVAL)
    tasks, errors = {}, []
    reader.listen()
    try:
        for i in range(10):
            tasks[f"before-{i}"] = writer(log_path, f"before-{i}")
        tasks["gated"] = gated = gated_writer(log_path, "gated", gate)
        for i in range(10):
            tasks[f"queued-{i}"] = writer(log_path, f"queued-{i}")
        wait_until(lambda: os.path.exists(_started(gate)), timeout=30)
        assert all(tasks[f"before-{i}"].done() for i in range(10))

        durable_server.stop(stop_signal)
        down = time.monotonic()
        open(gate, "w").close()  # the running task ends while the server is down
        wait_until(lambda: _runs(log_path)["gated"] == 1, timeout=30)
        during = _submit_in_threads(writer, log_path, [f"during-{i}" for i in range(5)],
                                    tasks, errors)
        time.sleep(max(0.0, down + OUTAGE - time.monotonic()))
        assert reader.listening and not errors
        assert all(thread.is_alive() for thread in during), "a write succeeded with no server"
        outage = time.monotonic() - down
        attempts = len([t for t in reader_store.failures if t >= down])

        durable_server.start()
        for i in range(10):
            tasks[f"after-{i}"] = writer(log_path, f"after-{i}")
        for thread in during:
            thread.join(30)
        assert not errors and len(tasks) == 36
        results = {tag: task.result(30) for tag, task in tasks.items()}
        assert reader.listening
    finally:
        reader.stop(10)

    assert results == {tag: tag for tag in tasks}
    assert _runs(log_path) == {tag: 1 for tag in tasks}, "a task ran twice or never"
    assert reader.completed == len(tasks)
    record = gated.record
    assert record["attempts"] == 1 and record["reader"] == reader.name
    # A busy loop would make hundreds of attempts; the backoff allows about
    # one per MAX_RECONNECT_INTERVAL after a few quick ones.
    assert 1 <= attempts <= 10 + 2 * outage / MAX_RECONNECT_INTERVAL, (attempts, outage)
    assert len(_reader_messages(caplog, reader, "cannot reach")) == 1
    assert len(_reader_messages(caplog, reader, "again after")) == 1


def test_reader_recovers_from_a_restart_that_lost_the_data(volatile_server, tmp_path, caplog):
    """Without persistence the tasks (and the queue's consumer group) are
    gone after the restart; the reader recreates the queue and runs the tasks
    written afterwards instead of failing on every poll."""
    caplog.set_level(logging.WARNING, logger="strand")
    log_path = str(tmp_path / "runs.log")
    writer = strand.StoreTaskWriter(record_run, strand.RedisStore(volatile_server.url))
    reader = strand.StoreTaskReader(volatile_server.url, functions=[record_run],
                                    lease=LEASE, max_poll_interval=0.05,
                                    max_reconnect_interval=MAX_RECONNECT_INTERVAL)
    reader.listen()
    try:
        assert writer(log_path, "first").result(30) == "first"
        volatile_server.stop(signal.SIGKILL)
        shutil.rmtree(volatile_server.directory)
        volatile_server.start()
        assert writer(log_path, "second").result(30) == "second"
        assert reader.listening
    finally:
        reader.stop(10)
    assert _runs(log_path) == {"first": 1, "second": 1}
    assert any("was missing" in record.getMessage() for record in caplog.records)


def test_a_reader_stopped_while_the_server_is_down_leaves_its_task_to_be_run_again(
        durable_server, tmp_path, caplog):
    """``stop()`` does not hang on an unreachable store; the task whose
    outcome could not be written runs again after its lease (at-least-once)."""
    caplog.set_level(logging.WARNING, logger="strand")
    log_path, gate = str(tmp_path / "runs.log"), str(tmp_path / "gate")
    writer = strand.StoreTaskWriter(gated_record_run,
                                    strand.RedisStore(durable_server.url, reconnect_timeout=60))
    first = strand.StoreTaskReader(durable_server.url, functions=[gated_record_run],
                                   lease=LEASE, max_poll_interval=0.05,
                                   max_reconnect_interval=MAX_RECONNECT_INTERVAL).listen()
    task = writer(log_path, "gated", gate)
    try:
        wait_until(lambda: os.path.exists(_started(gate)), timeout=30)
        durable_server.stop(signal.SIGKILL)
        open(gate, "w").close()
        wait_until(lambda: _runs(log_path)["gated"] == 1, timeout=30)
        assert first.stop(timeout=10), "stop() hung on an unreachable store"
    finally:
        first.stop(10)
    assert any("stopped before it could write" in record.getMessage()
               for record in caplog.records)

    durable_server.start()
    second = strand.StoreTaskReader(durable_server.url, functions=[gated_record_run],
                                    lease=LEASE, max_poll_interval=0.05).listen()
    try:
        assert task.result(30) == "gated"
    finally:
        second.stop(10)
    record = task.record
    assert record["reader"] == second.name and record["attempts"] == 2
    assert _runs(log_path) == {"gated": 2}
