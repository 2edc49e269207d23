"""Writers waiting for outcomes, woken without polling.

A store that can tell when a task ended has ``outcome_waiter()``: an
:class:`Subscriptions` whose events a watcher (a thread reading the store's
notifications) sets.  ``StoreTask.result()`` subscribes, looks at the
record, and waits on the event; it still looks again every
:data:`SAFETY_INTERVAL` seconds in case a notification was lost (a
connection dropped while the server restarted, say).
"""
import threading
from collections.abc import Callable

import _lateral_sync

#: Seconds between two looks at a record while waiting for a notification.
SAFETY_INTERVAL = 1.0


class Subscriptions:
    """task id -> the events of the threads waiting for its outcome.

    The lock is a Guard, not a ``with`` block's: writers subscribe in the
    program's thread, where Ctrl-C lands, and the watcher needs the lock."""

    def __init__(self, start: Callable[[], None] | None = None) -> None:
        self._waiting: dict[str, set[threading.Event]] = {}
        self._guard = _lateral_sync.Guard()
        self._start = start  # called (under the lock) when the first waiter comes
        self._started = False

    def subscribe(self, task_id: str,
                  event: threading.Event | None = None) -> threading.Event:
        """An Event (``event``, or a new one) set when ``task_id`` may have ended."""
        event = threading.Event() if event is None else event
        self._guard.call(self._add, task_id, event)
        return event

    def _add(self, task_id: str, event: threading.Event) -> None:
        """Contract: _guard held."""
        self._waiting.setdefault(task_id, set()).add(event)
        if self._start is not None and not self._started:
            self._start()
            self._started = True

    def unsubscribe(self, task_id: str, event: threading.Event) -> None:
        """Forget ``event``."""
        self._guard.call(self._remove, task_id, event)

    def _remove(self, task_id: str, event: threading.Event) -> None:
        """Contract: _guard held."""
        events = self._waiting.get(task_id)
        if events is not None:
            events.discard(event)
            if not events:
                del self._waiting[task_id]

    def fire(self, task_id: str) -> None:
        """Wake the waiters of ``task_id``."""
        events: list[threading.Event] = self._guard.call(list, self._waiting.get(task_id, ()))
        for event in events:
            event.set()

    def fire_all(self) -> None:
        """Wake every waiter (a notification may have been lost)."""
        for event in self._guard.call(self._all_events):
            event.set()

    def _all_events(self) -> list[threading.Event]:
        """Contract: _guard held."""
        return [event for events in self._waiting.values() for event in events]

    def stopped(self) -> None:
        """The watcher ended: the next waiter starts another."""
        self._guard.call(setattr, self, "_started", False)

    def stop_if_idle(self) -> bool:
        """True (and the watcher may end) if nobody waits: the next waiter
        starts another watcher.  Atomic with :meth:`subscribe`."""
        return self._guard.call(self._stop_if_idle)

    def _stop_if_idle(self) -> bool:
        """Contract: _guard held."""
        if self._waiting:
            return False
        self._started = False
        return True

    def __bool__(self) -> bool:
        return bool(self._waiting)  # one read: the GIL is enough
