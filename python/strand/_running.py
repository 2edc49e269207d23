"""What a store reader keeps about the tasks it runs, and its one watch
thread: it renews the leases of all of them and enforces their time limits."""
import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import _lateral

from .stores._records import Record

if TYPE_CHECKING:
    from .process import ProcessTaskHandle
    from .reader import StoreTaskReader

log = logging.getLogger("strand")


class Running:
    """One claimed task: its claim, its deadline and, for a process task,
    the child's handle.  ``settle()`` is True for the first of the finishing
    thread and the time limit to ask: only that one writes the outcome."""

    __slots__ = ("task_id", "token", "record", "name", "deadline", "time_limit", "started",
                 "process", "timed_out", "_settled", "_lock")

    def __init__(self, task_id: str, record: Record, token: str,
                 time_limit: float | None) -> None:
        self.task_id = task_id
        self.record = record
        self.token = token
        name = record.get("name")
        self.name = name if isinstance(name, str) else "?"
        self.started: float | None = None
        self.time_limit = time_limit
        self.deadline: float | None = None
        self.process: ProcessTaskHandle[Any] | None = None
        self.timed_out = False
        self._settled = False
        self._lock = threading.Lock()

    def begin(self) -> None:
        """The task starts now (a prefetched task waited in the pool's queue):
        its time limit counts from here."""
        self.started = time.monotonic()
        if self.time_limit is not None:
            self.deadline = self.started + self.time_limit

    @property
    def settled(self) -> bool:
        """True once the outcome is being written (or was)."""
        return self._settled

    def settle(self) -> bool:
        """True once: the caller writes the outcome."""
        return _lateral.locked_call(self._lock, self._settle_once)

    def _settle_once(self) -> bool:
        """Contract: _lock held."""
        if self._settled:
            return False
        self._settled = True
        return True


class Backoff:
    """Pauses between attempts: ``first`` doubling up to ``ceiling``."""

    def __init__(self, first: float, ceiling: float) -> None:
        self.first, self.ceiling = first, ceiling
        self.current = first

    def next(self) -> float:
        """The pause to take now (the next one is longer)."""
        delay = self.current
        self.current = min(self.current * 2, self.ceiling)
        return delay

    def reset(self) -> None:
        """An attempt succeeded: start again from ``first``."""
        self.current = self.first


class Watch:
    """One thread per reader, alive while the reader listens or runs tasks
    that need it: every third of the lease it renews all the reader's claims
    in one call, and it ends the tasks that outlive their time limit."""

    def __init__(self, reader: "StoreTaskReader") -> None:
        self._reader = reader
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = False

    def start(self, deadline: bool = True) -> None:
        """Start the thread if it is not running; wake it if a new
        ``deadline`` may be the nearest (a renewal alone waits for the next
        beat: waking the thread for every claimed task costs a thread switch
        each).  The program's thread calls start() and close(), where Ctrl-C
        lands: the lock is taken in C, for a with block that a signal handler
        raises into as it begins (3.14) leaves it held."""
        _lateral.locked_call(self._lock, self._start_thread)
        if deadline:
            self._wake.set()

    def _start_thread(self) -> None:
        """Contract: _lock held."""
        self._closing = False
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"strand-watch-{self._reader.name}")
            self._thread.start()

    def close(self) -> None:
        """Let the thread end once no task is running."""
        _lateral.locked_call(self._lock, self._mark_closing)
        self._wake.set()

    def _mark_closing(self) -> None:
        """Contract: _lock held."""
        self._closing = True

    def _run(self) -> None:
        reader = self._reader
        beat = None if reader.lease is None else reader.lease / 3
        next_beat = time.monotonic() + (beat or 0)
        while True:
            running = reader.running_tasks()
            with self._lock:
                if self._closing and not running:
                    self._thread = None
                    return
            deadlines = [task.deadline for task in running
                         if task.deadline is not None and not task.timed_out]
            wake_at = min(deadlines + ([next_beat] if beat else []), default=None)
            timeout = None if wake_at is None else max(0.0, wake_at - time.monotonic())
            self._wake.wait(timeout)
            self._wake.clear()
            now = time.monotonic()
            if beat and now >= next_beat:
                next_beat = now + beat
                reader.renew_claims()
            for task in reader.running_tasks():
                if task.deadline is not None and now >= task.deadline and not task.timed_out:
                    reader.time_out(task)


class Finisher:
    """One thread per listening reader that writes the outcomes of the
    tasks that ended: all those waiting in one call (one transaction, one
    round trip), so a pool thread is free for the next task as soon as its
    function returns.  The only task of an otherwise idle reader writes its
    own outcome."""

    #: The most outcomes written in one call.
    BATCH = 64

    def __init__(self, write: Callable[[Sequence[tuple[Running, Record]]], None]) -> None:
        self._write = write
        self._pending: collections.deque[tuple[Running, Record]] = collections.deque()
        self._ready = threading.Condition(threading.Lock())
        self._closing = False
        self._writing = False
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="strand-finisher")
        self._thread.start()

    def put(self, running: Running, fields: Record, alone: bool = False) -> bool:
        """Queue the outcome of ``running``; False if the caller should
        write it itself: the finisher has ended, or the task ran ``alone``
        (no other task of the reader runs) while the finisher is idle -- a
        hand-over to its thread would only add a wake-up to the latency."""
        return _lateral.locked_call(self._ready, self._queue, running, fields, alone)

    def _queue(self, running: Running, fields: Record, alone: bool) -> bool:
        """Contract: _ready held."""
        if self._closing or alone and not (self._pending or self._writing):
            return False
        self._pending.append((running, fields))
        self._ready.notify()
        return True

    def close(self) -> None:
        """Write what is queued, then end the thread.  The program's thread
        may call put() and close(): the condition's lock is taken in C, as
        in Watch.start().  Only the finisher's own thread waits on it."""
        _lateral.locked_call(self._ready, self._mark_closing)

    def _mark_closing(self) -> None:
        """Contract: _ready held."""
        self._closing = True
        self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                self._writing = False
                while not self._pending and not self._closing:
                    self._ready.wait()
                if not self._pending:
                    return
                batch = [self._pending.popleft()
                         for _ in range(min(self.BATCH, len(self._pending)))]
                self._writing = True
            try:
                self._write(batch)
            except BaseException:
                log.exception("strand: could not write %d outcomes", len(batch))
