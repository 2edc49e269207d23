"""Helpers shared by the test modules of the three packages."""
import threading
import time

#: Generous bound for anything that should happen "soon" on a noisy machine.
PATIENCE = 20.0


def wait_until(predicate, timeout=PATIENCE, interval=0.005):
    """Poll ``predicate`` until it is true; False if ``timeout`` ran out."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


class Counter:
    """A thread-safe counter that remembers its highest value and the sum of
    its increments."""

    def __init__(self):
        self.value = 0
        self.peak = 0
        self.total = 0
        self._lock = threading.Lock()

    def add(self, n=1):
        """Add ``n`` (may be negative); returns the new value."""
        with self._lock:
            self.value += n
            self.peak = max(self.peak, self.value)
            if n > 0:
                self.total += n
            return self.value
