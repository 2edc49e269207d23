"""pylateral demo: a small ETL job, run serially and then with a task pool.

Run it with ``python -m pylateral.demo`` (``--help`` lists the flags).

The demo starts a local HTTP server (127.0.0.1, a free port, a background
thread) that answers ``GET /records/<i>`` with a JSON record built from ``i``,
each answer delayed by ``--delay`` seconds to stand in for a slow remote API.
It then extracts ``--records`` records from it, one request per record, and
loads each one as a row into an SQLite file -- twice:

* serially, with a plain ``for`` loop;
* in parallel, with the same per-record function decorated with
  ``@pylateral.task`` and called inside ``pylateral.task_pool(max_workers=W)``.
  Each worker thread writes through a connection of its own, obtained with
  ``@pylateral.cache_result(scope=pylateral.CacheScopes.THREAD)``.

It prints both wall-clock times and the speedup, then checks that the two
databases hold exactly the same rows; the exit status is 1 if they do not.
Progress goes to stderr: a line redrawn in place on a terminal (the
parallel run's is ``task_pool(progress=True)``), plain lines when stderr is
a pipe or a log file (``progress="lines"``), nothing with ``--quiet``.
Work that waits on I/O releases the GIL, so ``W`` threads come close to a
``W``-fold speedup even on one core.
"""
import argparse
import contextlib
import json
import math
import os
import re
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import _lateral_progress

import pylateral

#: Seconds an HTTP request or a locked database may take before failing.
IO_TIMEOUT = 30.0

_RECORD_PATH = re.compile(r"/records/(\d+)")


# --------------------------------------------------------------------------
# Extract: the local record server and its client


#: A record as the server sends it and the table stores it (JSON-ready).
Record = dict[str, Any]
#: A row of the ``records`` table: id, name, value, payload.
Row = tuple[int, str, int, str]


def make_record(i: int) -> Record:
    """The deterministic JSON-ready record the server returns for ``i``."""
    return {
        "id": i,
        "name": f"record-{i:05d}",
        "value": (i * 7919) % 1000,
        "tags": ["even" if i % 2 == 0 else "odd", f"group-{i % 7}"],
    }


class _RecordHandler(BaseHTTPRequestHandler):
    server: "_RecordServer"

    def do_GET(self) -> None:
        match = _RECORD_PATH.fullmatch(self.path)
        if match is None:
            self.send_error(404, "expected /records/<non-negative integer>")
            return
        time.sleep(self.server.delay)  # the latency of a slow remote API
        body = json.dumps(make_record(int(match.group(1)))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # keep the demo's output clean
        pass


class _RecordServer(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connections when many workers connect
    # at once, and each dropped SYN costs the client a 1 s retransmit.
    request_queue_size = 128

    def __init__(self, delay: float) -> None:
        super().__init__(("127.0.0.1", 0), _RecordHandler)
        self.delay = delay


@contextlib.contextmanager
def serve_records(delay: float) -> Iterator[str]:
    """Run the record server in a background thread; yield its base URL."""
    server = _RecordServer(delay)
    thread = threading.Thread(target=server.serve_forever, name="record-server",
                              daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# Proxy settings from the environment must not divert loopback requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch_record(base_url: str, i: int) -> Record:
    """GET record ``i`` from the server and decode it."""
    with _OPENER.open(f"{base_url}/records/{i}", timeout=IO_TIMEOUT) as response:
        record: Record = json.loads(response.read())
        return record


# --------------------------------------------------------------------------
# Load: the SQLite table


class RecordTable:
    """The ``records`` table of one SQLite file, written by many threads.

    Each thread must use its own connection (:meth:`thread_connection`);
    :meth:`close` closes them all once the writers are done.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        conn = self.open_connection()
        # WAL lets a writer proceed while others read; it is stored in the
        # file, so setting it once here covers every later connection.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("DROP TABLE IF EXISTS records")
        conn.execute("CREATE TABLE records (id INTEGER PRIMARY KEY, name TEXT"
                     " NOT NULL, value INTEGER NOT NULL, payload TEXT NOT NULL)")

    def open_connection(self) -> sqlite3.Connection:
        """A new autocommit connection that waits up to IO_TIMEOUT for locks."""
        # check_same_thread=False only so that close() may close a worker's
        # connection after the worker is gone; no two threads share one.
        conn = sqlite3.connect(self.path, timeout=IO_TIMEOUT, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            self._connections.append(conn)
        return conn

    def thread_connection(self) -> sqlite3.Connection:
        """The calling thread's connection to this table (opened on first use)."""
        return _thread_connection(self)

    def insert(self, record: Record) -> None:
        """Insert ``record`` as one row, through the calling thread's connection."""
        payload = json.dumps(record, sort_keys=True)
        self.thread_connection().execute(
            "INSERT INTO records (id, name, value, payload) VALUES (?, ?, ?, ?)",
            (record["id"], record["name"], record["value"], payload))

    def rows(self) -> list[Row]:
        """Every row, sorted by id."""
        rows: list[Row] = self.thread_connection().execute(
            "SELECT id, name, value, payload FROM records ORDER BY id").fetchall()
        return rows

    def close(self) -> None:
        """Close every connection; call it when no thread writes any more."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        _thread_connection.clear_cache()


@pylateral.cache_result(scope=pylateral.CacheScopes.THREAD)
def _thread_connection(table: RecordTable) -> sqlite3.Connection:
    # SQLite connections must not cross threads: one per (thread, table).
    return table.open_connection()


# --------------------------------------------------------------------------
# The two runs


def progress_option(quiet: bool) -> _lateral_progress.ProgressOption:
    """The runs' ``progress=``: nothing when quiet, a line redrawn in place
    on a terminal, plain lines (no ``\\r``) when stderr goes to a pipe or a log."""
    if quiet:
        return False
    return True if _lateral_progress.is_terminal(sys.stderr) else _lateral_progress.LINES


def extract_and_load(base_url: str, table: RecordTable, i: int) -> None:
    """The ETL step for one record: fetch it, store it."""
    table.insert(fetch_record(base_url, i))


load_in_pool = pylateral.task(extract_and_load)


def run_serial(base_url: str, table: RecordTable, records: int,
               progress: _lateral_progress.ProgressOption) -> float:
    """Load every record with a plain loop; return the elapsed seconds."""
    start = time.perf_counter()
    done = 0
    monitor = _lateral_progress.start(progress, lambda: (done, records), "serial",
                                      _lateral_progress.package_logger("pylateral"))
    try:
        for i in range(records):
            extract_and_load(base_url, table, i)
            done += 1
    finally:
        if monitor is not None:
            monitor.finish()
    return time.perf_counter() - start


def run_parallel(base_url: str, table: RecordTable, records: int, workers: int,
                 progress: _lateral_progress.ProgressOption) -> float:
    """Load every record with pylateral tasks; return the elapsed seconds."""
    start = time.perf_counter()
    with pylateral.task_pool(max_workers=workers, progress=progress):
        for i in range(records):
            load_in_pool(base_url, table, i)
    return time.perf_counter() - start


def timed_run(db_path: str, run: Callable[[RecordTable], float]) -> tuple[float, list[Row]]:
    """Load the records into a fresh table at ``db_path`` with ``run``;
    return (seconds, rows)."""
    table = RecordTable(db_path)
    try:
        return run(table), table.rows()
    finally:
        table.close()


# --------------------------------------------------------------------------
# Command line


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds, got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(
            f"must be a finite number >= 0, got {text!r}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The demo's options; argparse exits with status 2 on bad flags."""
    parser = argparse.ArgumentParser(
        prog="python -m pylateral.demo",
        description="Extract records from a slow local HTTP server into SQLite, "
                    "serially and with pylateral, and compare.")
    parser.add_argument("--records", type=_at_least_one, default=200, metavar="N",
                        help="records to extract and load (default 200)")
    parser.add_argument("--workers", type=_at_least_one, default=20, metavar="W",
                        help="threads in the task pool (default 20)")
    parser.add_argument("--delay", type=_seconds, default=0.05, metavar="SECONDS",
                        help="server latency per request (default 0.05)")
    parser.add_argument("--db-dir", metavar="DIR",
                        help="where to write serial.db and parallel.db "
                             "(default: a temporary directory, removed afterwards)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress line, only the summary")
    args = parser.parse_args(argv)
    if args.db_dir is not None and os.path.exists(args.db_dir) \
            and not os.path.isdir(args.db_dir):
        parser.error(f"argument --db-dir: {args.db_dir!r} is not a directory")
    return args


@contextlib.contextmanager
def _db_dir(path: str | None) -> Iterator[str]:
    if path is None:
        with tempfile.TemporaryDirectory(prefix="pylateral-demo-") as tmp:
            yield tmp
    else:
        os.makedirs(path, exist_ok=True)
        yield path


def _compare(serial_rows: list[Row], parallel_rows: list[Row], records: int,
             ) -> tuple[str, bool]:
    """The summary line on the two tables' rows, and whether they match."""
    if serial_rows != parallel_rows:
        return (f"databases DIFFER: serial {len(serial_rows)} rows, "
                f"parallel {len(parallel_rows)} rows"), False
    if len(serial_rows) != records:
        return f"databases hold {len(serial_rows)} rows, expected {records}", False
    return f"databases match: {records} rows", True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return the exit status (0 when the databases match)."""
    args = parse_args(argv)
    progress = progress_option(args.quiet)
    print(f"pylateral demo: {args.records} records, {args.workers} workers, "
          f"{args.delay * 1000:g} ms per request", flush=True)
    with serve_records(args.delay) as url, _db_dir(args.db_dir) as db_dir:
        serial_s, serial_rows = timed_run(
            os.path.join(db_dir, "serial.db"),
            lambda table: run_serial(url, table, args.records, progress))
        parallel_s, parallel_rows = timed_run(
            os.path.join(db_dir, "parallel.db"),
            lambda table: run_parallel(url, table, args.records, args.workers, progress))
    print(f"  serial:   {serial_s:8.3f} s")
    print(f"  parallel: {parallel_s:8.3f} s")
    print(f"  speedup:  {serial_s / parallel_s:8.1f}x")
    summary, matched = _compare(serial_rows, parallel_rows, args.records)
    print(f"  {summary}")
    return 0 if matched else 1


if __name__ == "__main__":
    sys.exit(main())
