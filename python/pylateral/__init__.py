"""pylateral: simple multi-threaded task processing, on lateral's native pool.

Decorate a function with ``@pylateral.task`` and call it inside
``with pylateral.task_pool():`` -- each call is queued on a pool thread and
the calling code carries on.  The ``with`` block exits only when every task,
nested ones included, has finished.  See docs/pylateral.md.
"""
from _lateral import (
    LateralError as PylateralError,
    checkpoint,
    PoolForkedError,
    PoolTimeoutError,
    TaskCancelled,
    TaskPoolAlreadyAllocated,
    UnexpectedReturnValueError,
)

from .cache import CacheScopes, cache_result
from .pool import TaskPool, get_current_task_pool, join, task_group, task_pool
from .task import task

#: Alias of :class:`UnexpectedReturnValueError` (the published library's name).
UnexpectedReturnValue = UnexpectedReturnValueError

__all__ = [
    "CacheScopes",
    "PoolForkedError",
    "PoolTimeoutError",
    "PylateralError",
    "TaskCancelled",
    "TaskPool",
    "TaskPoolAlreadyAllocated",
    "UnexpectedReturnValue",
    "UnexpectedReturnValueError",
    "cache_result",
    "checkpoint",
    "get_current_task_pool",
    "join",
    "task",
    "task_group",
    "task_pool",
]
