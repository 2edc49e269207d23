"""strand: easy creation of non-blocking tasks, on lateral's native pool.

A Taskrunner wraps a function; calling the runner calls the function in a
thread (``ThreadTaskrunner``), a process (``MultiprocessTaskrunner``), a
coroutine (``CoroutineTaskrunner``), later and elsewhere through a store
(``StoreTaskWriter`` and ``StoreTaskReader``), or at once (``Taskrunner``),
with ``on_iter``/``on_end``/``on_error`` callbacks.  ``as_task`` is the
decorator form; ``dispatch`` starts many calls at once.  See docs/strand.md.
"""
from _lateral_version import module_getattr as _module_getattr

from . import constants, taskrunning  # the published module paths
from .base import Taskrunner
from .coroutine import AsyncioHandle, CoroutineTaskrunner
from .decorator import TARGETS, as_task
from .dispatch import Args, Dispatch, dispatch
from .handles import (COMPLETE, ERROR, NEW, RUNNING, STATUSES, CancelledTask,
                      CompletedHandle, Handle, TaskHandle)
from .launcher import run_process
from .process import MultiprocessTaskrunner, ProcessTaskHandle, RemoteTraceback, TaskProcessError
from .reader import StoreTaskReader, TaskRefused
from .registry import TaskRegistry, register_task, registry
from .serialization import Serializer, get_serializer, register_serializer
from .stores import MappingTaskQueue, RedisStore, SqliteStore, StoreUnavailable, open_store
from .task_dispatcher import TaskDispatcher
from .threads import ThreadTaskrunner, thread_pool
from .writer import SignatureError, StoreTask, StoreTaskError, StoreTaskWriter


#: ``__version__``: the installed lateral version (see docs/api/strand.rst).
__getattr__ = _module_getattr(__name__)

__all__ = [
    "Args", "AsyncioHandle", "COMPLETE", "CancelledTask", "CompletedHandle",
    "CoroutineTaskrunner", "Dispatch", "ERROR", "Handle", "MappingTaskQueue",
    "MultiprocessTaskrunner", "NEW", "ProcessTaskHandle", "RUNNING", "RedisStore",
    "RemoteTraceback", "STATUSES", "Serializer", "SignatureError", "SqliteStore",
    "StoreTask", "StoreTaskError", "StoreTaskReader", "StoreTaskWriter", "StoreUnavailable", "TARGETS",
    "TaskDispatcher", "TaskHandle", "TaskProcessError", "TaskRefused", "TaskRegistry",
    "Taskrunner", "ThreadTaskrunner", "as_task", "constants", "dispatch", "get_serializer",
    "open_store", "register_serializer", "register_task", "registry", "run_process",
    "taskrunning", "thread_pool",
]
