"""SqliteStore: a task store in an SQLite file, shared by the processes of a machine."""
import collections.abc
import itertools
import logging
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

import _lateral

from ..handles import COMPLETE, ERROR, NEW, RUNNING, status_fields
from ..serialization import encode_record
from . import _wake
from ._records import (BAD_RECORD, BadRecord, Claim, Record, decode_record, error_fields, merged,
                       outcome_text)
from ._waiting import Subscriptions

log = logging.getLogger("strand")
_T = TypeVar("_T")

# The claim's columns, laid over the record when it is read.
_CLAIM_COLUMNS = ("reader", "attempts", "started")
_COLUMNS = {"reader": "TEXT", "attempts": "INTEGER", "started": "REAL", "outcome": "TEXT",
            "not_before": "REAL", "expires": "REAL", "finished": "REAL"}
# Seconds between two sweeps of expired records by one store object.
_SWEEP_INTERVAL = 1.0
# RETURNING came with SQLite 3.35.
_RETURNING = sqlite3.sqlite_version_info >= (3, 35)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SqliteStore(collections.abc.MutableMapping[str, Record]):
    """A ``MutableMapping`` of task id -> record kept in an SQLite file.

    Several processes (writers and readers) may open the same file: a reader
    claims tasks in one ``IMMEDIATE`` transaction (an ``UPDATE ... RETURNING``),
    so each task is claimed once.  A claim has a lease that the reader renews
    while the task runs; a task whose reader died is claimed again once its
    lease has expired.  Records are stored as JSON (bytes allowed), which
    never runs code when read; the claim and the outcome are kept in columns
    of their own, so neither rewrites the record.  A record that cannot be
    decoded is marked ``error`` (``error_type`` ``BadRecord``) when it comes
    up, and the queue moves on.

    Idle readers and writers waiting for a result do not poll: they wait on
    a Unix datagram socket that the writers and readers of the file send to
    (see ``strand/stores/_wake.py``).
    """

    def __init__(self, path: str | os.PathLike[str], *, table: str = "strand_tasks",
                 timeout: float = 30.0) -> None:
        try:
            path = os.fspath(path)
        except TypeError:
            raise TypeError(f"SqliteStore needs a file path (str or os.PathLike), got "
                            f"{type(path).__name__}: {path!r}") from None
        if path == ":memory:" or not path:
            raise ValueError("SqliteStore needs a file path (an in-memory database is not "
                             "shared between connections; use a dict for one process)")
        if not isinstance(table, str):
            raise TypeError(f"table must be a str, got {table!r}")
        if not _IDENTIFIER.match(table):
            raise ValueError(f"table must be a plain SQL identifier, got {table!r}")
        self.path = os.path.abspath(path)
        self.table = table
        self.timeout = _busy_timeout(timeout)
        self._local = threading.local()
        self._closed = False
        self._wake = _wake.WakeChannel(self.path + "\0" + table)
        self._listeners: dict[str, _wake.Listener] = {}  # reader name -> its task Listener
        self._listeners_lock = threading.Lock()
        self._outcomes = Subscriptions(start=self._watch_outcomes)
        self._next_sweep = 0.0
        self._token_base = uuid.uuid4().hex + "."  # plus a count: unique to one claim
        self._claims = itertools.count()
        try:
            self._create_schema()
        except sqlite3.OperationalError as exc:  # "unable to open database file" names no file
            raise sqlite3.OperationalError(f"cannot open the task store {self.path!r}: "
                                           f"{exc}") from exc

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "table": self.table, "timeout": self.timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], table=state["table"],  # type: ignore[misc]
                      timeout=state["timeout"])

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r}, table={self.table!r})"

    # --- connections -------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._closed:  # ValueError, as for a closed file or shelf
            raise ValueError(f"{self!r} is closed; open a new SqliteStore to use the "
                             "file again")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _transaction(self, body: Callable[..., _T], *args: Any) -> _T:
        """``body(conn, *args)`` in one write transaction: committed if it
        returns, rolled back if it raises.  The threads of one process take
        turns on a lock of the file's own: SQLite's busy handler would make
        them sleep (1, 2, 5, 10... ms) while another connection of the same
        process holds the write lock.  That lock is taken in C (locked_call),
        not by a with block: the program's thread writes too, where Ctrl-C
        lands, and a signal handler that raises as such a block begins (3.14)
        would leave it held, while every reader thread needs it."""
        result: _T = _lateral.locked_call(_file_lock(self.path), self._in_transaction, body,
                                          *args)
        return result

    def _in_transaction(self, body: Callable[..., _T], *args: Any) -> _T:
        """Contract: the file's lock held."""
        conn = self._conn()
        if conn.in_transaction:  # left open by a write that a signal interrupted
            conn.execute("ROLLBACK")
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(conn, *args)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    def _write_one(self, sql: str, params: Sequence[Any]) -> int:
        """One statement in a write transaction; its row count."""
        return self._transaction(_row_count, sql, params)

    def close(self) -> None:
        """Close this thread's connection and refuse any further use (the
        connections of other threads close when their thread ends)."""
        self._closed = True
        for listener in _lateral.locked_call(self._listeners_lock, self._take_listeners):
            listener.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _create_schema(self) -> None:
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        self._transaction(self._create_tables)

    def _create_tables(self, conn: sqlite3.Connection) -> None:
        """Contract: in a write transaction."""
        conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ("
                     "seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, "
                     "status TEXT NOT NULL, record TEXT NOT NULL, token TEXT, "
                     "lease_until REAL)")
        # a file written by an older lateral gains the newer columns
        known = {row[1] for row in conn.execute(f"PRAGMA table_info({self.table})")}
        for name, kind in _COLUMNS.items():
            if name not in known:
                conn.execute(f"ALTER TABLE {self.table} ADD COLUMN {name} {kind}")
        conn.execute(f"CREATE INDEX IF NOT EXISTS {self.table}_status "
                     f"ON {self.table} (status, seq)")
        conn.execute(f"CREATE INDEX IF NOT EXISTS {self.table}_expires "
                     f"ON {self.table} (expires) WHERE expires IS NOT NULL")

    # --- MutableMapping ----------------------------------------------------

    _LIVE = "(expires IS NULL OR expires > ?)"

    def __getitem__(self, key: str) -> Record:
        row = self._conn().execute(
            f"SELECT record, outcome, status, reader, attempts, started FROM {self.table} "
            f"WHERE id = ? AND {self._LIVE}", (_check_key(key), time.time())).fetchone()
        if row is None:
            raise KeyError(key)
        return _merged_row(row)

    def __setitem__(self, key: str, record: Mapping[str, Any]) -> None:
        if not isinstance(record, collections.abc.Mapping):
            raise TypeError(f"a task record must be a mapping, got {type(record).__name__}")
        text = encode_record(record, key)
        status = str(record.get("status", ""))
        eta = record.get("eta")
        eta = eta if isinstance(eta, (int, float)) and not isinstance(eta, bool) else None
        key = _check_key(key)
        self._transaction(self._put, key, status, text, eta)
        if status == NEW:
            self._wake.notify(_wake.TASK)

    def _put(self, conn: sqlite3.Connection, key: str, status: str, text: str,
             eta: float | None) -> None:
        """Not an UPSERT: that needs SQLite 3.24.  Contract: in a write transaction."""
        updated = conn.execute(
            f"UPDATE {self.table} SET status = ?, record = ?, token = NULL, "
            "lease_until = NULL, reader = NULL, attempts = NULL, started = NULL, "
            "outcome = NULL, not_before = ?, expires = NULL, finished = NULL "
            "WHERE id = ?", (status, text, eta, key)).rowcount
        if not updated:
            conn.execute(f"INSERT INTO {self.table} (id, status, record, not_before) "
                         "VALUES (?, ?, ?, ?)", (key, status, text, eta))

    def __delitem__(self, key: str) -> None:
        if self._write_one(f"DELETE FROM {self.table} WHERE id = ?", (_check_key(key),)) == 0:
            raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        rows = self._conn().execute(f"SELECT id FROM {self.table} WHERE {self._LIVE} "
                                    "ORDER BY seq", (time.time(),)).fetchall()
        return iter([row[0] for row in rows])

    def __len__(self) -> int:
        count: int = self._conn().execute(f"SELECT COUNT(*) FROM {self.table} WHERE {self._LIVE}",
                                    (time.time(),)).fetchone()[0]
        return count

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return self._conn().execute(f"SELECT 1 FROM {self.table} WHERE id = ? AND "
                                    f"{self._LIVE}", (key, time.time())).fetchone() is not None

    # --- the task-queue protocol ------------------------------------------

    def claim_task(self, reader: str, lease: float | None = None) -> Claim | None:
        """Claim the oldest new task (or one whose lease expired): mark it
        running and return ``(id, record, token)``, or None."""
        claims = self.claim_tasks(reader, lease, 1)
        return claims[0] if claims else None

    def claim_tasks(self, reader: str, lease: float | None = None, count: int = 1,
                    wait: float = 0.0, stop: threading.Event | None = None) -> list[Claim]:
        """Claim up to ``count`` tasks -- those whose lease expired first,
        then new ones due now, oldest first -- in one transaction; a list of
        ``(id, record, token)``.  With ``wait`` > 0 and nothing to claim,
        wait up to ``wait`` seconds for a writer's wake-up (or the next
        delayed task) and try again -- unless the Event ``stop`` is set."""
        deadline = time.monotonic() + wait
        listener = self._listener(reader) if wait > 0 else None
        while True:
            claims = self._claim_round(reader, lease, count)
            remaining = deadline - time.monotonic()
            if claims or remaining <= 0:
                return claims
            due = self._next_due()
            if due is not None:
                remaining = min(remaining, max(0.0, due - time.time()) + 0.001)
            listener.wait(remaining)  # type: ignore[union-attr]  # wait > 0 here
            if stop is not None and stop.is_set():
                return []

    def wake_readers(self) -> None:
        """Wake the readers waiting in ``claim_tasks`` (a reader stops)."""
        self._wake.notify(_wake.TASK)

    # The listeners' lock is taken in C (locked_call): the program's thread
    # stops readers and closes stores, where Ctrl-C lands, and a with block
    # could be left holding it.

    def _listener(self, reader: str) -> _wake.Listener:
        return _lateral.locked_call(self._listeners_lock, self._listener_of, reader)

    def _listener_of(self, reader: str) -> _wake.Listener:
        """Contract: _listeners_lock held."""
        listener = self._listeners.get(reader)
        if listener is None:
            listener = self._listeners[reader] = self._wake.listen(_wake.TASK)
        return listener

    def _take_listeners(self) -> list[_wake.Listener]:
        """Contract: _listeners_lock held."""
        listeners, self._listeners = list(self._listeners.values()), {}
        return listeners

    def forget_reader(self, reader: str) -> None:
        """A reader stopped: close its wake-up socket."""
        listener = _lateral.locked_call(self._listeners_lock, self._listeners.pop, reader, None)
        if listener is not None:
            listener.close()

    _CLAIMABLE = ("SELECT seq FROM (SELECT seq FROM {t} WHERE status = 'running' AND "
                  "lease_until < :now ORDER BY seq LIMIT :count) UNION ALL "
                  "SELECT seq FROM (SELECT seq FROM {t} WHERE status = 'new' AND "
                  "(not_before IS NULL OR not_before <= :now) ORDER BY seq LIMIT :count) "
                  "LIMIT :count")

    def _claim_round(self, reader: str, lease: float | None, count: int) -> list[Claim]:
        while True:  # a round that found only bad records is followed by another
            claims, refused = self._claim_rows(reader, lease, count)
            if claims or not refused:
                return claims

    def _claim_rows(self, reader: str, lease: float | None,
                    count: int) -> tuple[list[Claim], int]:
        now = time.time()
        claimable = self._CLAIMABLE.format(t=self.table)
        # a read-only look first: an idle reader takes no write lock
        if not self._conn().execute(claimable, {"now": now, "count": 1}).fetchone():
            return [], 0
        params = {"now": now, "count": count, "token": f"{self._token_base}{os.getpid()}.{next(self._claims)}.",
                  "reader": reader, "lease": None if lease is None else now + lease}
        update = (f"UPDATE {self.table} SET status = 'running', token = :token || seq, "
                  "reader = :reader, started = :now, attempts = COALESCE(attempts, 0) + 1, "
                  f"lease_until = :lease WHERE seq IN ({claimable})")
        returned = "seq, id, record, outcome, token, attempts"

        def claim(conn: sqlite3.Connection) -> tuple[list[Claim], int]:
            self._sweep(conn, now)
            if _RETURNING:
                rows = conn.execute(f"{update} RETURNING {returned}", params).fetchall()
            else:
                seqs = [row[0] for row in conn.execute(claimable, params)]
                conn.execute(update, params)
                rows = conn.execute(f"SELECT {returned} FROM {self.table} WHERE seq IN "
                                    f"({','.join('?' * len(seqs))})", seqs).fetchall()
            claims: list[Claim] = []
            refused = 0
            for seq, key, text, outcome, token, attempts in sorted(rows):
                try:
                    record = decode_record(text)
                except BadRecord as exc:
                    self._refuse(conn, seq, key, exc)
                    refused += 1
                    continue
                if outcome:
                    record.update(decode_record(outcome))
                record.update(status_fields(RUNNING), reader=reader, started=now,
                              attempts=attempts)
                claims.append((key, record, token))
            return claims, refused

        return self._transaction(claim)

    def _refuse(self, conn: sqlite3.Connection, seq: int, key: str, exc: BadRecord) -> None:
        log.warning("strand: task %s in %r cannot be run: %s; marked error", key, self, exc)
        fields = error_fields(BAD_RECORD, str(exc))
        conn.execute(f"UPDATE {self.table} SET status = ?, outcome = ?, token = NULL, "
                     "lease_until = NULL, finished = ? WHERE seq = ?",
                     (ERROR, outcome_text(fields), fields["finished"], seq))
        self._wake.notify(_wake.DONE, key.encode("utf-8"))

    def _sweep(self, conn: sqlite3.Connection, now: float) -> None:
        if now >= self._next_sweep:
            self._next_sweep = now + _SWEEP_INTERVAL
            conn.execute(f"DELETE FROM {self.table} WHERE expires <= ?", (now,))

    def _next_due(self) -> float | None:
        row: tuple[float | None] = self._conn().execute(
            f"SELECT MIN(not_before) FROM {self.table} WHERE status = 'new' AND "
            "not_before IS NOT NULL").fetchone()
        return row[0]

    def renew_task(self, key: str, token: str, lease: float | None = None) -> bool:
        """Extend the lease of a claim; False if the claim was lost."""
        return not self.renew_tasks([(key, token)], lease)

    def renew_tasks(self, claims: Sequence[tuple[str, str]],
                    lease: float | None = None) -> list[str]:
        """Extend the leases of ``claims`` (``(id, token)`` pairs) in one
        transaction; the ids of the claims that were lost."""
        if lease is None or not claims:
            return []
        until = time.time() + lease

        def renew(conn: sqlite3.Connection) -> list[str]:
            return [key for key, token in claims
                    if conn.execute(f"UPDATE {self.table} SET lease_until = ? WHERE id = ? AND "
                                    "token = ? AND status = 'running'",
                                    (until, key, token)).rowcount != 1]

        return self._transaction(renew)

    def finish_task(self, key: str, token: str, fields: Mapping[str, Any]) -> bool:
        """Write the outcome ``fields`` (``status``, and ``result`` or
        ``error``...) if the claim ``token`` still owns the task: one
        ``UPDATE``; True if written.  A ``status`` of ``new`` (a retry) with
        an ``eta`` queues the task again for then; ``expires`` (epoch
        seconds) removes the record then."""
        return self.finish_tasks([(key, token, fields)])[0]

    def finish_tasks(self, outcomes: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[bool]:
        """:meth:`finish_task` for each ``(id, token, fields)``, in one
        transaction; a list of bools."""
        rows = [(str(fields.get("status", "")), outcome_text(fields),
                 fields.get("eta") if fields.get("status") == NEW else None,
                 fields.get("expires"), fields.get("finished"), key, token)
                for key, token, fields in outcomes]
        sql = (f"UPDATE {self.table} SET status = ?, outcome = ?, token = NULL, "
               "lease_until = NULL, not_before = ?, expires = ?, finished = ? "
               "WHERE id = ? AND token = ?")
        written: list[bool] = self._transaction(
            lambda conn: [conn.execute(sql, row).rowcount == 1 for row in rows])
        ended = [row[5] for row, done in zip(rows, written) if done and row[0] != NEW]
        if ended:
            self._wake.notify(_wake.DONE, "\n".join(ended).encode("utf-8"))
        if any(done and row[0] == NEW for row, done in zip(rows, written)):
            self._wake.notify(_wake.TASK)
        return written

    def release_task(self, key: str, token: str) -> bool:
        """Give a claimed task that did not start back to the queue (its
        reader stops); True if the claim still owned it."""
        released = self._write_one(
            f"UPDATE {self.table} SET status = 'new', token = NULL, lease_until = NULL, "
            "attempts = attempts - 1 WHERE id = ? AND token = ?", (key, token))
        if released:
            self._wake.notify(_wake.TASK)
        return bool(released)

    def cancel_task(self, key: str) -> bool:
        """Mark a task that no reader claimed yet ``error`` (``TaskCancelled``);
        True if it was still waiting."""
        fields = error_fields("TaskCancelled", "the task was cancelled before a reader "
                                               "claimed it")
        cancelled = self._write_one(
            f"UPDATE {self.table} SET status = ?, outcome = ?, finished = ? "
            "WHERE id = ? AND status = 'new'",
            (ERROR, outcome_text(fields), fields["finished"], _check_key(key)))
        if cancelled:
            self._wake.notify(_wake.DONE, key.encode("utf-8"))
        return bool(cancelled)

    # --- administration (the ``strand`` command) ------------------------------

    def counts(self) -> dict[str, int]:
        """``{status: number of records}``."""
        rows = self._conn().execute(f"SELECT status, COUNT(*) FROM {self.table} WHERE "
                                    f"{self._LIVE} GROUP BY status", (time.time(),))
        return dict(rows.fetchall())

    def errors(self, limit: int = 10) -> list[tuple[str, Record]]:
        """The last ``limit`` failed records, newest first, as ``(id, record)``."""
        rows = self._conn().execute(
            f"SELECT id, record, outcome, status, reader, attempts, started FROM {self.table} "
            f"WHERE status = 'error' AND {self._LIVE} ORDER BY finished DESC, seq DESC "
            "LIMIT ?", (time.time(), limit)).fetchall()
        return [(row[0], _merged_row(row[1:])) for row in rows]

    def requeue(self, key: str) -> bool:
        """Queue a failed task again (its outcome is dropped); True if it had failed."""
        done = self._write_one(
            f"UPDATE {self.table} SET status = 'new', outcome = NULL, token = NULL, "
            "lease_until = NULL, not_before = NULL, expires = NULL, finished = NULL "
            "WHERE id = ? AND status = 'error'", (_check_key(key),))
        if done:
            self._wake.notify(_wake.TASK)
        return bool(done)

    def purge(self, statuses: Collection[str] = (COMPLETE, ERROR),
              before: float | None = None) -> int:
        """Delete the records of ``statuses`` (finished before ``before``,
        epoch seconds, if given); the number deleted."""
        marks = ",".join("?" * len(statuses))
        query = f"DELETE FROM {self.table} WHERE status IN ({marks})"
        params: list[str | float] = list(statuses)
        if before is not None:
            query += " AND COALESCE(finished, 0) < ?"
            params.append(before)
        return self._write_one(query, params)

    # --- writers waiting for outcomes ------------------------------------------

    def outcome_waiter(self) -> Subscriptions:
        """The :class:`Subscriptions` that wake writers waiting for outcomes."""
        return self._outcomes

    def _watch_outcomes(self) -> None:
        listener = self._wake.listen(_wake.DONE)
        threading.Thread(target=self._outcome_loop, args=(listener,), daemon=True,
                         name="strand-sqlite-outcomes").start()

    def _outcome_loop(self, listener: _wake.Listener) -> None:
        """Reads the done wake-ups while writers wait (and 30 s longer)."""
        idle, ended_idle = 0.0, False
        try:
            while not self._closed:
                for payload in listener.wait(1.0):
                    for task_id in payload.decode("utf-8", "replace").split("\n"):
                        self._outcomes.fire(task_id)
                idle = 0.0 if self._outcomes else idle + 1.0
                if idle >= _WATCH_IDLE and self._outcomes.stop_if_idle():
                    ended_idle = True
                    return
        finally:
            if not ended_idle:
                self._outcomes.stopped()
            listener.close()


# Seconds a watcher of outcomes lives on once nobody waits.
_WATCH_IDLE = 30.0

_FILE_LOCKS: dict[str, threading.Lock] = {}
_FILE_LOCKS_LOCK = threading.Lock()


# a child forked while another thread held a lock must not inherit it held
os.register_at_fork(after_in_child=_FILE_LOCKS.clear)


def _file_lock(path: str) -> threading.Lock:
    """The process's lock of one database file."""
    lock = _FILE_LOCKS.get(path)
    if lock is None:
        lock = _lateral.locked_call(_FILE_LOCKS_LOCK, _FILE_LOCKS.setdefault, path,
                                    threading.Lock())
    return lock


def _row_count(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> int:
    return conn.execute(sql, params).rowcount


def _merged_row(row: Sequence[Any]) -> Record:
    text, outcome, status, *claim = row
    return merged(text, outcome, status,
                  {name: value for name, value in zip(_CLAIM_COLUMNS, claim) if value is not None})


# SQLite keeps its busy timeout as a C int of milliseconds.
_MAX_BUSY_SECONDS = (2 ** 31 - 1) / 1000


def _busy_timeout(timeout: float) -> float:
    """Seconds a connection waits for a lock: any non-negative number, capped
    at what SQLite can represent (a larger value would wrap to no wait)."""
    if timeout is None:
        raise TypeError("timeout must be a number of seconds, got None")
    return min(cast(float, _lateral.check_timeout(timeout)), _MAX_BUSY_SECONDS)


def _check_key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"task ids in a store are strings, got {key!r}")
    return key

