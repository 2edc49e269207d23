"""progress= on task_pool, parallel.map/par (and the async forms) and strand's
reader; the pylateral, parallel and strand loggers (docs/*.md, "Progress"
and "Logging" sections)."""
import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import _lateral_progress
import parallel
import pylateral
import strand
import strand_jobs_support as jobs
from common_support import wait_until
from pylateral_support import child_env, isolated_pylateral  # noqa: F401
from strand_support import HERE

pytestmark = pytest.mark.timeout(120)

GATE_AT = 10


class Recorder:
    """A progress callback that keeps its calls (and the threads they came
    from), and opens ``gate`` once it saw ``GATE_AT`` items done but not all:
    work that waits on the gate proves the callback is called during the run,
    not only at its end."""

    def __init__(self):
        self.calls = []
        self.threads = set()
        self.gate = threading.Event()

    def __call__(self, done, total):
        self.calls.append((done, total))
        self.threads.add(threading.current_thread().name)
        if GATE_AT <= done and (total is None or done < total):
            self.gate.set()

    def held_item(self, i):
        """An item function: the items from GATE_AT on wait for the gate."""
        if i >= GATE_AT:
            assert self.gate.wait(60), "the callback never saw a partial count"
        return i * 2


def assert_rising_to(calls, total):
    dones = [done for done, _ in calls]
    assert dones == sorted(set(dones)), calls  # each call a new, higher count
    assert calls[-1] == (total, total), calls
    assert any(0 < done < total for done in dones), calls  # called during the run


# --- progress: the callback form -----------------------------------------------------

@pytest.mark.parametrize("executor", ["thread", "process"])
def test_map_callback_gets_rising_counts_ending_at_the_total(executor):
    recorder = Recorder()
    if executor == "process":  # the gate cannot cross processes: slow items instead
        results = parallel.map(time.sleep, [0.05] * 40, executor=executor, max_workers=2,
                               progress=recorder)
        assert len(results) == 40
        dones = [done for done, _ in recorder.calls]
        assert dones == sorted(set(dones)) and recorder.calls[-1] == (40, 40)
    else:
        results = parallel.map(recorder.held_item, range(30), max_workers=2,
                               progress=recorder)
        assert results == [i * 2 for i in range(30)]
        assert_rising_to(recorder.calls, 30)
    assert recorder.threads == {"lateral-progress"}  # as documented


def test_par_callback_gets_rising_counts_ending_at_the_total():
    recorder = Recorder()
    calls = {f"k{i}": (recorder.held_item, i) for i in range(20)}
    results = parallel.par(calls, max_workers=2, progress=recorder)
    assert results == {f"k{i}": i * 2 for i in range(20)}
    assert_rising_to(recorder.calls, 20)


def test_async_map_callback_ends_at_the_total_before_the_await_returns():
    recorder = Recorder()

    async def main():
        return await parallel.async_map(recorder.held_item, range(25), max_workers=2,
                                        progress=recorder)

    assert asyncio.run(main()) == [i * 2 for i in range(25)]
    assert_rising_to(recorder.calls, 25)


def test_async_par_results_end_the_progress():
    recorder = Recorder()
    with parallel.async_par([(recorder.held_item, i) for i in range(15)], max_workers=2,
                            progress=recorder) as execution:
        assert execution.results() == [i * 2 for i in range(15)]
        assert_rising_to(recorder.calls, 15)


def test_task_pool_callback_counts_finished_out_of_a_growing_submitted_total():
    recorder = Recorder()
    task = pylateral.task(lambda i: None)
    with pylateral.task_pool(max_workers=2, progress=recorder):
        for i in range(5):
            task(i)
        wait_until(lambda: recorder.calls and recorder.calls[-1] == (5, 5))
        for i in range(7):
            task(i)
    assert recorder.calls[-1] == (12, 12)  # shown before the block exits
    dones = [done for done, _ in recorder.calls]
    totals = [total for _, total in recorder.calls]
    assert dones == sorted(dones) and totals == sorted(totals)
    assert all(done <= total for done, total in recorder.calls)
    assert recorder.threads == {"lateral-progress"}


def test_reader_callback_counts_the_tasks_done_without_a_total():
    store = {}
    writer = strand.StoreTaskWriter(jobs.plus, store)
    tasks = [writer(i, 1) for i in range(6)]
    recorder = Recorder()
    reader = strand.StoreTaskReader(store, functions=[jobs.plus], concurrency=2,
                                    progress=recorder)
    with reader:
        assert [task.result(60) for task in tasks] == [i + 1 for i in range(6)]
        wait_until(lambda: reader.completed == 6)
    assert recorder.calls[-1] == (6, None)
    assert all(total is None for _, total in recorder.calls)


def test_a_raising_callback_stops_progress_and_is_raised_after_the_work():
    calls = []

    def broken(done, total):
        calls.append(done)
        raise RuntimeError("the progress UI broke")

    with pytest.raises(RuntimeError, match="the progress UI broke"):
        parallel.map(abs, range(10), progress=broken)
    assert len(calls) == 1  # not called again once it raised


def test_an_error_of_the_work_wins_over_the_callbacks(caplog):
    def broken(done, total):
        raise RuntimeError("the progress UI broke")

    def fail(i):
        raise ValueError("the item failed")

    with caplog.at_level(logging.WARNING, logger="parallel"):
        with pytest.raises(ValueError, match="the item failed"):
            parallel.map(fail, range(3), progress=broken)
    assert any("progress callback raised RuntimeError" in r.getMessage()
               for r in caplog.records)


# --- progress: drawing ---------------------------------------------------------------

@pytest.fixture
def no_tqdm(monkeypatch):
    monkeypatch.setattr(_lateral_progress, "_tqdm", lambda: None)


def test_built_in_line_is_drawn_in_place_when_forced(no_tqdm, capsys):
    parallel.map(abs, range(20), progress="always")
    err = capsys.readouterr().err
    assert err.startswith("\rparallel.map: ") and err.endswith("\n")
    assert err.rstrip(" \n").endswith("\rparallel.map: 20/20 (100%)")
    assert err.count("\n") == 1


def test_nothing_is_drawn_when_stderr_is_not_a_terminal(capsys):
    task = pylateral.task(lambda: None)
    parallel.map(abs, range(20), progress=True)
    with pylateral.task_pool(progress=True):
        task()
    assert capsys.readouterr().err == ""  # captured: not a terminal


def test_true_draws_when_stderr_is_a_terminal(no_tqdm, monkeypatch, capsys):
    monkeypatch.setattr(_lateral_progress, "is_terminal", lambda stream: True)
    parallel.par([(abs, -1), (abs, -2)], progress=True)
    assert "\rparallel.par: 2/2 (100%)" in capsys.readouterr().err


def test_tqdm_draws_the_bar_when_installed(capsys):
    pytest.importorskip("tqdm")
    task = pylateral.task(lambda: None)
    with pylateral.task_pool(progress="always"):
        for _ in range(8):
            task()
    err = capsys.readouterr().err
    assert "task_pool: 100%|" in err and "8/8" in err  # tqdm's format, not ours
    assert "(100%)" not in err


def test_lines_are_plain_for_logs(capsys):
    parallel.map(abs, range(20), progress="lines")
    err = capsys.readouterr().err
    assert "\r" not in err
    assert err.endswith("parallel.map: 20/20 (100%)\n")


@pytest.mark.parametrize("bad, error", [(42, TypeError), (1.5, TypeError),
                                        ("sometimes", ValueError)])
def test_a_bad_progress_value_is_refused_before_any_work(bad, error):
    called = []
    record = lambda *args: called.append(args)  # noqa: E731
    message = r"progress must be True, False, None, 'always', 'lines' or a callable"
    with pytest.raises(error, match=r"parallel\.map: " + message):
        parallel.map(record, range(3), progress=bad)
    with pytest.raises(error, match=r"parallel\.par: " + message):
        parallel.par([(record, 1)], progress=bad)
    with pytest.raises(error, match=message):
        parallel.async_map(record, range(3), progress=bad)
    with pytest.raises(error, match=message):
        parallel.async_par([(record, 1)], progress=bad)
    with pytest.raises(error, match=r"task_pool: " + message):
        pylateral.task_pool(progress=bad)
    with pytest.raises(error, match=r"StoreTaskReader: " + message):
        strand.StoreTaskReader({}, progress=bad)
    assert called == []
    assert pylateral.get_current_task_pool() is None


# --- logging -------------------------------------------------------------------------

def messages(caplog, logger, level):
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno == level]


def test_pylateral_logs_open_and_close_at_debug(caplog):
    caplog.set_level(logging.DEBUG, logger="pylateral")
    task = pylateral.task(lambda: None)
    with pylateral.task_pool(max_workers=3):
        task()
        task()
    assert messages(caplog, "pylateral", logging.DEBUG) == [
        "task pool opened: up to 3 worker threads",
        "task pool closed: 2 tasks run or dropped"]


def test_pylateral_logs_a_halt_and_its_error_at_warning(caplog):
    caplog.set_level(logging.DEBUG, logger="pylateral")

    @pylateral.task
    def load(row):
        raise KeyError(f"no column in row {row}")

    with pytest.raises(KeyError):
        with pylateral.task_pool(max_workers=1):
            load(7)
    [warning] = messages(caplog, "pylateral", logging.WARNING)
    assert "halted on a task's error" in warning and "KeyError" in warning
    assert "no column in row 7" in warning


def test_parallel_logs_pool_open_and_close_at_debug(caplog):
    parallel.shutdown()  # the next call opens a pool of its own
    caplog.set_level(logging.DEBUG, logger="parallel")
    parallel.map(abs, range(3))
    parallel.shutdown()
    debug = messages(caplog, "parallel", logging.DEBUG)
    assert any(m.startswith("thread pool opened") for m in debug), debug
    assert "thread pool closed" in debug


def test_parallel_logs_process_workers_starting_at_debug(caplog):
    caplog.set_level(logging.DEBUG, logger="parallel")
    parallel.shutdown()
    parallel.process.map(abs, range(3), max_workers=2)
    parallel.shutdown()
    debug = messages(caplog, "parallel", logging.DEBUG)
    assert "process pool opened: 2 worker processes started" in debug
    assert "process pool closed" in debug


def test_parallel_logs_a_map_stopping_on_an_item_error_at_warning(caplog):
    caplog.set_level(logging.DEBUG, logger="parallel")

    def parse(text):
        return int(text)

    with pytest.raises(ValueError):
        parallel.map(parse, ["1", "2", "x3"], max_workers=1)
    [warning] = messages(caplog, "parallel", logging.WARNING)
    assert warning.startswith("parallel.map stopped on an error: item 2 raised ValueError")
    assert "x3" in warning


def test_strand_logs_the_reader_start_and_stop_at_debug(caplog):
    caplog.set_level(logging.DEBUG, logger="strand")
    with strand.StoreTaskReader({}, name="observed", concurrency=2):
        pass
    debug = messages(caplog, "strand", logging.DEBUG)
    assert any(m.startswith("strand: reader observed started on") and "concurrency 2" in m
               for m in debug), debug
    assert "strand: reader observed stopped (0 complete, 0 failed)" in debug


UNCONFIGURED = """
import pylateral, parallel, strand
import strand_jobs_support as jobs

@pylateral.task
def fail():
    raise ValueError("boom")

try:
    with pylateral.task_pool(max_workers=2):
        fail()
except ValueError:
    pass
try:
    parallel.map(int, ["x"])
except ValueError:
    pass
parallel.process.map(abs, [1], max_workers=1)
parallel.shutdown()
store = {}
task = strand.StoreTaskWriter(jobs.plus, store)("x", 1)  # fails: the reader warns
with strand.StoreTaskReader(store, functions=[jobs.plus]):
    try:
        task.result(60)
    except strand.StoreTaskError:
        pass
assert task.status == "error", task.status
print("done")
"""


def test_nothing_is_printed_when_logging_is_not_configured():
    proc = subprocess.run([sys.executable, "-c", UNCONFIGURED], capture_output=True,
                          text=True, timeout=60, env=child_env(), cwd=HERE)
    assert proc.stdout == "done\n", proc.stderr
    assert proc.stderr == ""


def test_demo_piped_writes_plain_progress_lines():
    proc = subprocess.run([sys.executable, "-m", "pylateral.demo", "--records", "20",
                           "--workers", "5", "--delay", "0"], capture_output=True,
                          text=True, timeout=60, env=child_env())
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and "\r" not in proc.stdout
    assert "serial: 20/20 (100%)\n" in proc.stderr
    assert "task_pool: 20/20 (100%)\n" in proc.stderr


def test_strand_worker_progress_lines(tmp_path):
    path = str(tmp_path / "progress.db")
    tasks = [strand.StoreTaskWriter(jobs.plus, path)(i, 1) for i in range(3)]
    worker = subprocess.Popen(
        [sys.executable, "-m", "strand", "worker", path, "--import", "strand_jobs_support",
         "--progress", "lines", "--log-level", "WARNING"],
        cwd=HERE, stderr=subprocess.PIPE, text=True, env=child_env())
    try:
        assert [task.result(60) for task in tasks] == [1, 2, 3]
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "strand: 3 done\n" in err and "\r" not in err


class Unprintable(Exception):
    def __str__(self):
        raise ValueError("no text")


def test_a_halt_on_an_unprintable_error_is_logged_and_the_error_raised(caplog):
    caplog.set_level(logging.WARNING)

    def fail(i):
        raise Unprintable()

    with pytest.raises(Unprintable):
        parallel.map(fail, range(2), max_workers=1)
    with pytest.raises(Unprintable):
        with pylateral.task_pool(max_workers=1):
            pylateral.task(fail)(0)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and all("Unprintable (unprintable)" in m for m in warnings)


def test_true_draws_on_a_real_terminal():
    import fcntl
    import pty
    import struct
    import termios
    controller, terminal = pty.openpty()
    # 24 rows, 80 columns: a new pty has 0 columns, where tqdm draws nothing.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    code = "import parallel; parallel.map(abs, range(5), progress=True)"
    try:
        proc = subprocess.run([sys.executable, "-c", code], stderr=terminal, timeout=60,
                              env=child_env())
        os.close(terminal)
        terminal = None
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)
        if terminal is not None:
            os.close(terminal)
    assert proc.returncode == 0
    assert b"parallel.map" in drawn and b"5/5" in drawn, drawn
