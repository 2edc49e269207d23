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

    def __init__(self, reentrant: bool = False) -> None:
        """``reentrant``: a section may call :meth:`call` again (an RLock),
        for sections that run a user's callback."""
        self._lock = threading.RLock() if reentrant else threading.Lock()
        self._sleepers: list[Any] = []  # a held lock per sleeping waiter

    def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` with the lock held; the lock is released on every
        path, and no signal handler runs between its acquire and the call."""
        return _lateral.locked_call(self._lock, fn, *args)

    def notify_all(self) -> None:
        """Wake every waiter, which then checks its condition again.
        Contract: the lock held (call it from a section)."""
        # A sleeper that is not held any more was released by a notify_all
        # that Ctrl-C cut short before it cleared the list (its waiter is
        # awake).  A held one is either asleep or taken again by its waiter,
        # which is done with it: releasing it is harmless.
        for sleeper in self._sleepers:
            if sleeper.locked():
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
        while not self.sleep_unless(predicate, None if deadline is None
                                    else deadline - time.monotonic()):
            if deadline is not None and time.monotonic() >= deadline:
                return bool(self.call(predicate))
        return True

    def sleep_unless(self, predicate: Callable[[], object], timeout: float | None = None,
                     ) -> bool:
        """True at once if ``predicate()``, called with the lock held, is
        true; else sleep until the next :meth:`notify_all` or ``timeout``
        seconds, and return False.  For a caller that takes its news under
        the lock anyway after a wake-up: one section fewer than wait_for."""
        sleeper = self.call(self._sleeper_unless, predicate)
        if sleeper is None:
            return True
        if not sleeper.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
            self.call(self._forget, sleeper)  # a caller polling must not pile them up
        return False

    def _sleeper_unless(self, predicate: Callable[[], object]) -> Any:
        """None if ``predicate()``, else a held lock that notify_all
        releases.  Contract: the lock held."""
        if predicate():
            return None
        sleeper = _thread.allocate_lock()
        sleeper.acquire()
        self._sleepers.append(sleeper)
        return sleeper

    def _forget(self, sleeper: Any) -> None:
        """A timed-out waiter's sleeper leaves the list.  Contract: the lock held."""
        if sleeper in self._sleepers:
            self._sleepers.remove(sleeper)
