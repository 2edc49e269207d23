"""The interpreter's exit waits for work started fire-and-forget, as it does
for non-daemon threads and ThreadPoolExecutor (shared by parallel and
strand).

The wait runs in ``threading._shutdown``, the hook ThreadPoolExecutor uses:
before threads are joined and before the ``atexit`` handlers, among them
the core's, which stops every pool.  Ctrl-C stops the wait, and a program
that ends on an uncaught Ctrl-C does not wait at all: the user asked it to
stop.
"""
import collections
import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

_W = TypeVar("_W")

#: Entries an Unfinished set holds before it drops those whose work is gone.
PRUNE_AT = 1024


class Unfinished(Generic[_W]):
    """Work the interpreter's exit waits for, held by weak references
    without callbacks: a weakref callback is Python code that runs wherever
    the garbage collector does, and a Ctrl-C landing in one would be lost
    (printed as "Exception ignored").  Entries whose work is gone are
    dropped now and then, as the set grows."""

    def __init__(self) -> None:
        self._refs: collections.deque[weakref.ref[_W]] = collections.deque()
        self._prune_at = PRUNE_AT
        self._pruning = threading.Lock()

    def add(self, item: _W) -> None:
        self._refs.append(weakref.ref(item))
        if len(self._refs) >= self._prune_at and self._pruning.acquire(False):
            try:
                self._prune()
            finally:
                self._pruning.release()

    def discard(self, item: _W) -> None:
        """Do not wait for ``item`` (abandoned work)."""
        try:
            self._refs.remove(weakref.ref(item))
        except ValueError:
            pass

    def alive(self) -> list[_W]:
        """The work not gone yet."""
        return [item for item in (ref() for ref in list(self._refs)) if item is not None]

    def clear(self) -> None:
        self._refs.clear()

    def _prune(self) -> None:
        # Rotating keeps what other threads append meanwhile.
        for _ in range(len(self._refs)):
            ref = self._refs.popleft()
            if ref() is not None:
                self._refs.append(ref)
        self._prune_at = max(PRUNE_AT, 2 * len(self._refs))


def wait_at_exit(unfinished: Unfinished[_W], wait: Callable[[_W], object]) -> None:
    """At exit, call ``wait(item)`` for every item of ``unfinished`` (an
    :class:`Unfinished`), items added meanwhile included: work that the work
    starts."""

    def wait_for_all() -> None:
        if _ended_by_ctrl_c():
            return
        while True:
            items = unfinished.alive()
            if not items:
                return
            for item in items:
                wait(item)
                unfinished.discard(item)

    try:
        threading._register_atexit(wait_for_all)  # type: ignore[attr-defined]
    except RuntimeError:  # imported while the interpreter shuts down: too late to wait
        pass
    if hasattr(os, "register_at_fork"):
        # A forked child has none of the parent's threads or processes: the
        # parent's work never ends there.
        os.register_at_fork(after_in_child=unfinished.clear)


def _ended_by_ctrl_c() -> bool:
    """True when the program is ending on an uncaught KeyboardInterrupt
    (the interpreter printed it, which records it as the last exception)."""
    last = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    return isinstance(last, KeyboardInterrupt)
