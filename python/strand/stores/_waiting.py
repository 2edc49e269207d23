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

#: Seconds between two looks at a record while waiting for a notification.
SAFETY_INTERVAL = 1.0


class Subscriptions:
    """task id -> the events of the threads waiting for its outcome."""

    def __init__(self, start: Callable[[], None] | None = None) -> None:
        self._waiting: dict[str, set[threading.Event]] = {}
        self._lock = threading.Lock()
        self._start = start  # called (under the lock) when the first waiter comes
        self._started = False

    def subscribe(self, task_id: str,
                  event: threading.Event | None = None) -> threading.Event:
        """An Event (``event``, or a new one) set when ``task_id`` may have ended."""
        event = threading.Event() if event is None else event
        with self._lock:
            self._waiting.setdefault(task_id, set()).add(event)
            if self._start is not None and not self._started:
                self._start()
                self._started = True
        return event

    def unsubscribe(self, task_id: str, event: threading.Event) -> None:
        """Forget ``event``."""
        with self._lock:
            events = self._waiting.get(task_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiting[task_id]

    def fire(self, task_id: str) -> None:
        """Wake the waiters of ``task_id``."""
        with self._lock:
            events = list(self._waiting.get(task_id, ()))
        for event in events:
            event.set()

    def fire_all(self) -> None:
        """Wake every waiter (a notification may have been lost)."""
        with self._lock:
            events = [event for events in self._waiting.values() for event in events]
        for event in events:
            event.set()

    def stopped(self) -> None:
        """The watcher ended: the next waiter starts another."""
        with self._lock:
            self._started = False

    def stop_if_idle(self) -> bool:
        """True (and the watcher may end) if nobody waits: the next waiter
        starts another watcher.  Atomic with :meth:`subscribe`."""
        with self._lock:
            if self._waiting:
                return False
            self._started = False
            return True

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._waiting)
