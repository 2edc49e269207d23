"""Tests of the ETL demo, ``python -m pylateral.demo``."""
import json
import re
import sqlite3
import subprocess
import sys
import threading

import pytest

from pylateral import demo

SMALL = ["--records", "30", "--workers", "10", "--delay", "0.01"]


def _stored_rows(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id, name, value, payload FROM records "
                            "ORDER BY id").fetchall()
    finally:
        conn.close()


def _expected_rows(records):
    return [(i, demo.make_record(i)["name"], demo.make_record(i)["value"],
             json.dumps(demo.make_record(i), sort_keys=True)) for i in range(records)]


@pytest.mark.timeout(60)
def test_main_prints_times_speedup_and_matching_rows(capsys):
    assert demo.main(SMALL) == 0
    out, err = capsys.readouterr()
    assert "30 records, 10 workers" in out
    assert re.search(r"^  serial: +\d+\.\d+ s$", out, re.M)
    assert re.search(r"^  parallel: +\d+\.\d+ s$", out, re.M)
    assert re.search(r"^  speedup: +\d+\.\d+x$", out, re.M)
    assert "databases match: 30 rows" in out
    # The progress goes to stderr; captured, it is not a terminal: plain
    # lines, no carriage return, ending complete.
    assert "\r" not in err
    assert "serial: 30/30 (100%)\n" in err
    assert "task_pool: 30/30 (100%)\n" in err


@pytest.mark.timeout(60)
def test_progress_on_a_terminal_is_one_line_redrawn_in_place(monkeypatch, capsys):
    import _lateral_progress
    monkeypatch.setattr(_lateral_progress, "is_terminal", lambda stream: True)
    monkeypatch.setattr(_lateral_progress, "_tqdm", lambda: None)  # the built-in line
    assert demo.main(SMALL) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 2  # one line per run, ended once complete
    assert re.search(r"\rserial: 30/30 \(100%\) *\n", err)
    assert re.search(r"\rtask_pool: 30/30 \(100%\) *\n", err)


@pytest.mark.timeout(60)
def test_quiet_hides_the_progress_line(capsys):
    assert demo.main(SMALL + ["--quiet"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "databases match: 30 rows" in out


@pytest.mark.timeout(60)
def test_db_dir_keeps_both_databases_with_the_served_records(tmp_path, capsys):
    args = ["--records", "12", "--workers", "4", "--delay", "0", "--quiet",
            "--db-dir", str(tmp_path / "out")]
    assert demo.main(args) == 0
    assert demo.main(args) == 0  # a rerun replaces the rows instead of clashing
    for name in ("serial.db", "parallel.db"):
        assert _stored_rows(tmp_path / "out" / name) == _expected_rows(12)
    assert capsys.readouterr().out.count("databases match: 12 rows") == 2


@pytest.mark.timeout(60)
def test_parallel_run_has_workers_requests_in_flight_at_once(monkeypatch, capsys):
    # Every pool thread's request waits until 5 are in flight: the run can
    # only finish if the task pool really runs 5 extractions concurrently.
    in_flight = threading.Barrier(5, timeout=20)
    fetch = demo.fetch_record

    def fetch_together(base_url, i):
        if threading.current_thread() is not threading.main_thread():
            in_flight.wait()
        return fetch(base_url, i)

    monkeypatch.setattr(demo, "fetch_record", fetch_together)
    assert demo.main(["--records", "10", "--workers", "5", "--delay", "0",
                      "--quiet"]) == 0
    assert "databases match: 10 rows" in capsys.readouterr().out


@pytest.mark.timeout(60)
def test_databases_that_differ_give_a_nonzero_exit(monkeypatch, capsys):
    insert = demo.RecordTable.insert

    def lose_record_7_in_workers(table, record):
        if record["id"] == 7 and threading.current_thread() is not threading.main_thread():
            return
        insert(table, record)

    monkeypatch.setattr(demo.RecordTable, "insert", lose_record_7_in_workers)
    assert demo.main(["--records", "10", "--workers", "3", "--delay", "0",
                      "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "databases DIFFER: serial 10 rows, parallel 9 rows" in out
    assert "databases match" not in out


def _run_module(*args):
    return subprocess.run([sys.executable, "-m", "pylateral.demo", *args],
                          capture_output=True, text=True, timeout=60)


def test_runs_as_a_module():
    proc = _run_module("--records", "20", "--workers", "5", "--delay", "0.01")
    assert proc.returncode == 0, proc.stderr
    assert "databases match: 20 rows" in proc.stdout
    assert "speedup:" in proc.stdout


@pytest.mark.parametrize("flag, value", [
    ("--workers", "0"),
    ("--records", "-1"),
    ("--records", "many"),
    ("--delay", "-0.5"),
    ("--delay", "nan"),
])
def test_bad_flags_exit_nonzero_naming_the_flag(flag, value):
    proc = _run_module(flag, value)
    assert proc.returncode != 0
    assert f"argument {flag}:" in proc.stderr
    assert proc.stdout == ""  # rejected before any work starts


def test_db_dir_that_is_a_file_is_rejected(tmp_path, capsys):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(SystemExit) as exc:
        demo.main(["--db-dir", str(not_a_dir)])
    assert exc.value.code != 0
    assert "--db-dir" in capsys.readouterr().err
