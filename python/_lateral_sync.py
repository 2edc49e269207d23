"""A lock, and waits on it, that a signal handler cannot leave held.

Signal handlers run in the program's main thread, and Ctrl-C's handler
raises.  Two parts of the standard library can leave a shared lock held
(or freed by the wrong thread) when a handler raises at the wrong moment:

- ``with lock:``.  CPython 3.14 runs pending handlers right after
  ``__enter__`` returns, before the block's cleanup covers it: a raise there
  leaves the lock held for good.
- ``threading.Condition.wait``.  On its way out it takes the lock again
  with an acquire that a raising handler interrupts: the wait then ends
  with the lock *not* held, and the caller's release frees a lock that
  another thread may hold.

A :class:`Guard` has neither.  Its sections are calls made with the lock
held by the core (``_lateral.locked_call``), and a waiter sleeps on a
private lock of its own, which ``notify_all`` releases: an interrupted
waiter leaves no lock that another thread needs.
"""
import _thread
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import _lateral

_T = TypeVar("_T")


class Guard:
    """A lock whose sections are calls (:meth:`call`), with waits for a
    condition (:meth:`wait_for`) woken by :meth:`notify_all`."""

    __slots__ = ("_lock", "_sleepers")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sleepers: list[Any] = []  # a held lock per sleeping waiter

    def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` with the lock held; the lock is released on every
        path, and no signal handler runs between its acquire and the call."""
        return _lateral.locked_call(self._lock, fn, *args)

    def notify_all(self) -> None:
        """Wake every waiter, which then checks its condition again.
        Contract: the lock held (call it from a section)."""
        for sleeper in self._sleepers:
            sleeper.release()
        self._sleepers.clear()

    def wake_all(self) -> None:
        """:meth:`notify_all` in a section of its own."""
        self.call(self.notify_all)

    def wait_for(self, predicate: Callable[[], object], timeout: float | None = None) -> bool:
        """Wait until ``predicate()``, called with the lock held, is true, or
        until ``timeout`` seconds have passed; return whether it is true.
        Ctrl-C interrupts the wait, with the lock free."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (sleeper := self.call(self._sleeper_unless, predicate)) is not None:
            left = -1.0 if deadline is None else max(deadline - time.monotonic(), 0.0)
            if not sleeper.acquire(timeout=left):
                return self.call(self._give_up, sleeper, predicate)
        return True

    def _sleeper_unless(self, predicate: Callable[[], object]) -> Any:
        """None if ``predicate()``, else a held lock that notify_all
        releases.  Contract: the lock held."""
        if predicate():
            return None
        sleeper = _thread.allocate_lock()
        sleeper.acquire()
        self._sleepers.append(sleeper)
        return sleeper

    def _give_up(self, sleeper: Any, predicate: Callable[[], object]) -> bool:
        """A timed-out waiter's last look; its sleeper leaves the list, so
        that a caller polling does not pile them up.  Contract: the lock held."""
        if sleeper in self._sleepers:
            self._sleepers.remove(sleeper)
        return bool(predicate())
