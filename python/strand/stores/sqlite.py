"""SqliteStore: a task store in an SQLite file, shared by the processes of a machine."""
import collections.abc
import contextlib
import os
import re
import sqlite3
import threading
import time
import uuid

import _lateral

from ..handles import NEW, RUNNING, status_fields
from ..serialization import encode_record, json_dumps, json_loads

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SqliteStore(collections.abc.MutableMapping):
    """A ``MutableMapping`` of task id -> record kept in an SQLite file.

    Several processes (writers and readers) may open the same file: a reader
    claims a task in an ``IMMEDIATE`` transaction, so each task is claimed
    once.  A claim has a lease that the reader renews while the task runs;
    a task whose reader died is claimed again once its lease has expired.
    Records are stored as JSON (bytes allowed), which never runs code when
    read.
    """

    def __init__(self, path, *, table="strand_tasks", timeout=30.0):
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
        try:
            self._create_schema()
        except sqlite3.OperationalError as exc:  # "unable to open database file" names no file
            raise sqlite3.OperationalError(f"cannot open the task store {self.path!r}: "
                                           f"{exc}") from exc

    def __getstate__(self):
        return {"path": self.path, "table": self.table, "timeout": self.timeout}

    def __setstate__(self, state):
        self.__init__(state["path"], table=state["table"], timeout=state["timeout"])

    def __repr__(self):
        return f"SqliteStore({self.path!r}, table={self.table!r})"

    # --- connections -------------------------------------------------------

    def _conn(self):
        if self._closed:  # ValueError, as for a closed file or shelf
            raise ValueError(f"{self!r} is closed; open a new SqliteStore to use the "
                             "file again")
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextlib.contextmanager
    def _write(self):
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self):
        """Close this thread's connection and refuse any further use (the
        connections of other threads close when their thread ends)."""
        self._closed = True
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _create_schema(self):
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        with self._write() as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ("
                         "seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, "
                         "status TEXT NOT NULL, record TEXT NOT NULL, token TEXT, "
                         "lease_until REAL)")
            conn.execute(f"CREATE INDEX IF NOT EXISTS {self.table}_status "
                         f"ON {self.table} (status, seq)")

    # --- MutableMapping ----------------------------------------------------

    def __getitem__(self, key):
        row = self._conn().execute(f"SELECT record FROM {self.table} WHERE id = ?",
                                   (_check_key(key),)).fetchone()
        if row is None:
            raise KeyError(key)
        return json_loads(row[0])

    def __setitem__(self, key, record):
        if not isinstance(record, collections.abc.Mapping):
            raise TypeError(f"a task record must be a mapping, got {type(record).__name__}")
        text = encode_record(record, key)
        status = str(record.get("status", ""))
        key = _check_key(key)
        with self._write() as conn:  # not an UPSERT: that needs SQLite 3.24
            updated = conn.execute(f"UPDATE {self.table} SET status = ?, record = ?, "
                                   "token = NULL, lease_until = NULL WHERE id = ?",
                                   (status, text, key)).rowcount
            if not updated:
                conn.execute(f"INSERT INTO {self.table} (id, status, record) VALUES (?, ?, ?)",
                             (key, status, text))

    def __delitem__(self, key):
        with self._write() as conn:
            cursor = conn.execute(f"DELETE FROM {self.table} WHERE id = ?", (_check_key(key),))
        if cursor.rowcount == 0:
            raise KeyError(key)

    def __iter__(self):
        rows = self._conn().execute(f"SELECT id FROM {self.table} ORDER BY seq").fetchall()
        return iter([row[0] for row in rows])

    def __len__(self):
        return self._conn().execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0]

    def __contains__(self, key):
        if not isinstance(key, str):
            return False
        return self._conn().execute(f"SELECT 1 FROM {self.table} WHERE id = ?",
                                    (key,)).fetchone() is not None

    # --- the task-queue protocol ------------------------------------------

    def claim_task(self, reader, lease=None):
        """Claim the oldest new task (or one whose lease expired): mark it
        running and return ``(id, record, token)``, or None."""
        if not self._claimable(time.time()):
            return None  # a read-only check first: idle pollers take no write lock
        with self._write() as conn:
            now = time.time()
            row = self._claimable(now, conn)
            if row is None:
                return None
            key, text = row
            record = json_loads(text)
            token = uuid.uuid4().hex
            record.update(status_fields(RUNNING), reader=reader, started=now,
                          attempts=record.get("attempts", 0) + 1)
            conn.execute(f"UPDATE {self.table} SET status = ?, record = ?, token = ?, "
                         "lease_until = ? WHERE id = ?",
                         (RUNNING, json_dumps(record), token,
                          None if lease is None else now + lease, key))
        return key, record, token

    def _claimable(self, now, conn=None):
        conn = conn or self._conn()
        row = conn.execute(f"SELECT id, record FROM {self.table} WHERE status = ? "
                           "ORDER BY seq LIMIT 1", (NEW,)).fetchone()
        if row is None:
            row = conn.execute(f"SELECT id, record FROM {self.table} WHERE status = ? AND "
                               "lease_until < ? ORDER BY seq LIMIT 1", (RUNNING, now)).fetchone()
        return row

    def renew_task(self, key, token, lease=None):
        """Extend the lease of a claim; False if the claim was lost."""
        if lease is None:
            return True
        with self._write() as conn:
            cursor = conn.execute(f"UPDATE {self.table} SET lease_until = ? "
                                  "WHERE id = ? AND token = ? AND status = ?",
                                  (time.time() + lease, key, token, RUNNING))
        return cursor.rowcount == 1

    def finish_task(self, key, token, fields):
        """Merge ``fields`` (status, result or error...) into the record if
        the claim ``token`` still owns it; True if written."""
        with self._write() as conn:
            row = conn.execute(f"SELECT record, token FROM {self.table} WHERE id = ?",
                               (key,)).fetchone()
            if row is None or row[1] != token:
                return False
            record = json_loads(row[0])
            record.update(fields)
            conn.execute(f"UPDATE {self.table} SET status = ?, record = ?, token = NULL, "
                         "lease_until = NULL WHERE id = ?",
                         (str(record.get("status", "")), encode_record(record, key), key))
        return True


# SQLite keeps its busy timeout as a C int of milliseconds.
_MAX_BUSY_SECONDS = (2 ** 31 - 1) / 1000


def _busy_timeout(timeout):
    """Seconds a connection waits for a lock: any non-negative number, capped
    at what SQLite can represent (a larger value would wrap to no wait)."""
    if timeout is None:
        raise TypeError("timeout must be a number of seconds, got None")
    return min(_lateral.check_timeout(timeout), _MAX_BUSY_SECONDS)


def _check_key(key):
    if not isinstance(key, str):
        raise TypeError(f"task ids in a store are strings, got {key!r}")
    return key

