"""pylateral's exceptions, at the published pylateral's module path
(``pylateral.exceptions``); all of them are importable from ``pylateral`` too."""
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


__all__ = [
    "PoolForkedError", "PoolTimeoutError", "PylateralError", "TaskCancelled",
    "TaskGroupAlreadyExists", "TaskPoolAlreadyAllocated", "UnexpectedReturnValue",
    "UnexpectedReturnValueError",
]
