"""pylateral's exceptions, at the published pylateral's module path
(``pylateral.exceptions``); all of them are importable from ``pylateral`` too."""
import sys
from collections.abc import Sequence

from _lateral import (
    LateralError as PylateralError,
    PoolForkedError,
    PoolTimeoutError,
    TaskCancelled,
    TaskPoolAlreadyAllocated,
    UnexpectedReturnValueError,
)

#: Alias of :class:`UnexpectedReturnValueError` (the published library's name).
UnexpectedReturnValue = UnexpectedReturnValueError


class TaskGroupAlreadyExists(PylateralError):
    """Kept so that code catching the published pylateral's error still
    imports.  lateral never raises it: task groups nest (the inner group
    waits for its own tasks, and those count for the outer one too)."""


if sys.version_info >= (3, 11):
    _ExceptionGroup = ExceptionGroup  # noqa: F821 -- a builtin from 3.11 on
else:
    class _ExceptionGroup(Exception):
        """What Python 3.10 lacks of ``ExceptionGroup``: ``message`` and
        ``exceptions``.  3.10 prints no sub-exceptions, so ``str()`` lists
        the first ones after the message."""

        _SHOWN = 10

        def __init__(self, message: str, exceptions: Sequence[Exception]) -> None:
            super().__init__(message, list(exceptions))
            self.message = message
            self.exceptions = tuple(exceptions)

        def __str__(self) -> str:
            lines = [self.message]
            lines += [f"  {type(exc).__name__}: {exc}".replace("\n", "\n    ")
                      for exc in self.exceptions[:self._SHOWN]]
            if len(self.exceptions) > self._SHOWN:
                lines.append(f"  ... and {len(self.exceptions) - self._SHOWN} more "
                             f"(see .exceptions)")
            return "\n".join(lines)


class TaskErrors(_ExceptionGroup, PylateralError):
    """Raised when a ``task_pool(halt_on_error=False)`` block ends and some
    of its tasks failed: ``message`` gives the counts (``"3 of 120 tasks
    failed"``) and ``exceptions`` the tasks' exceptions in completion order,
    each with a note naming the call that queued it.

    An ``ExceptionGroup`` on Python 3.11+ (``except* ValueError:`` picks
    some out); on 3.10 an Exception with the same ``message`` and
    ``exceptions``.  Also a :class:`PylateralError`.
    """

    __module__ = "pylateral"  # as the other errors: printed and pickled as pylateral.X


__all__ = [
    "PoolForkedError", "PoolTimeoutError", "PylateralError", "TaskCancelled",
    "TaskErrors", "TaskGroupAlreadyExists", "TaskPoolAlreadyAllocated",
    "UnexpectedReturnValue", "UnexpectedReturnValueError",
]
