"""pylateral: simple multi-threaded task processing, on lateral's native pool.

Decorate a function with ``@pylateral.task`` and call it inside
``with pylateral.task_pool():`` -- each call is queued on a pool thread and
the calling code carries on.  The ``with`` block exits only when every task,
nested ones included, has finished.  See docs/pylateral.md.
"""
from typing import TYPE_CHECKING

from _lateral import checkpoint
from _lateral_version import module_getattr as _module_getattr

# The published module paths, reachable after a bare `import pylateral` as there.
from . import exceptions, task_group_module, task_module, task_pool_module, timeout, util  # noqa: F401
from .cache import CacheScopes, cache_result
from .exceptions import (
    PoolForkedError,
    PoolTimeoutError,
    PylateralError,
    TaskCancelled,
    TaskErrors,
    TaskGroupAlreadyExists,
    TaskPoolAlreadyAllocated,
    UnexpectedReturnValue,
    UnexpectedReturnValueError,
)
from .pool import TaskPool, get_current_task_pool, join, task_group, task_pool
from .task import task
from .task_group_module import get_current_task_group

if TYPE_CHECKING:
    # Declared, so that a type checker still reports a misspelt name.
    __version__: str
else:
    #: ``__version__``: the installed lateral version (see docs/api/pylateral.rst).
    __getattr__ = _module_getattr(__name__)

__all__ = [
    "CacheScopes",
    "PoolForkedError",
    "PoolTimeoutError",
    "PylateralError",
    "TaskCancelled",
    "TaskErrors",
    "TaskGroupAlreadyExists",
    "TaskPool",
    "TaskPoolAlreadyAllocated",
    "UnexpectedReturnValue",
    "UnexpectedReturnValueError",
    "cache_result",
    "checkpoint",
    "get_current_task_group",
    "get_current_task_pool",
    "join",
    "task",
    "task_group",
    "task_pool",
]
