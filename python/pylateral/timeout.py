"""``pylateral.timeout.timeout``: a time limit on a block of the main thread,
as in the published pylateral.

    with timeout(10):
        something_that_should_not_exceed_ten_seconds()

It arms ``SIGALRM`` (a real-time interval timer), so it works only in the
main thread and on POSIX, and it does not nest.  For a limit on a
task pool use ``task_pool(timeout=...)`` instead.
"""
import contextlib
import errno
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

#: The message of the TimeoutError raised when the time runs out.
DEFAULT_TIMEOUT_MESSAGE = os.strerror(errno.ETIME)


class timeout(contextlib.ContextDecorator):
    """Raise ``TimeoutError(timeout_message)`` in the main thread once
    ``seconds`` (> 0, fractions allowed) have passed inside the block or the
    decorated function; with ``suppress_timeout_errors=True`` the block just
    ends there."""

    def __init__(self, seconds: float, *, timeout_message: str = DEFAULT_TIMEOUT_MESSAGE,
                 suppress_timeout_errors: bool = False) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TypeError(f"timeout needs a number of seconds, got {seconds!r}")
        if not 0 < seconds < float("inf"):
            raise ValueError(f"timeout needs a positive, finite number of seconds, "
                             f"got {seconds!r}")
        self.seconds = seconds
        self.timeout_message = timeout_message
        self.suppress = bool(suppress_timeout_errors)
        self._previous: Callable[[int, FrameType | None], Any] | int | None = None

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(self.timeout_message)

    def __enter__(self) -> "timeout":
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("pylateral.timeout.timeout works only in the main thread "
                               "(it uses SIGALRM)")
        self._previous = signal.signal(signal.SIGALRM, self._on_alarm)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        signal.setitimer(signal.ITIMER_REAL, 0)
        # None: the handler was not set from Python; the default is the best guess.
        previous, self._previous = self._previous, None
        signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)
        return self.suppress and exc_type is TimeoutError
