"""parallel: run functions in parallel, on threads or processes, with one call.

``parallel.map(fn, params)`` calls one function once per parameter;
``parallel.par(calls)`` runs different calls; ``async_map`` / ``async_par``
start them and return at once.  Threads run on lateral's native pool (the
``_lateral`` core); processes on standard ``concurrent.futures`` process
pools; any ``concurrent.futures.Executor`` can be passed as ``executor=``.
See docs/parallel.md.
"""
from _lateral_version import module_getattr as _module_getattr

from . import exceptions, models, utils
from ._params import PROCESS_EXECUTOR, THREAD_EXECUTOR
from .api import (
    AsyncExecution,
    ExecutorNamespace,
    async_map,
    async_par,
    map,
    par,
    process,
    shutdown,
    split,
    thread,
)
from .decorators import ParallelFunction, decorate, decorated
from .exceptions import TimeoutException
from .executors import BaseParallelExecutor, ProcessExecutor, ThreadExecutor
from .models import (
    BaseResult,
    DictResult,
    FailedTask,
    ListResult,
    NamedMapResult,
    ParallelArg,
    ParallelJob,
    ParallelStatus,
    SequentialMapResult,
    arg,
    future,
)

#: The published python-parallel's name of :class:`future`.
job = future

# The statuses of a ThreadExecutor / ProcessExecutor (``executor.status``).
#: ``executor.status`` before ``start()``.
NOT_STARTED = ParallelStatus.NOT_STARTED
#: ``executor.status`` once started, until every call has ended.
STARTED = ParallelStatus.STARTED
#: ``executor.status`` when every call returned.
DONE = ParallelStatus.DONE
#: ``executor.status`` when a call raised.
FAILED = ParallelStatus.FAILED


#: ``__version__``: the installed lateral version (see docs/api/parallel.rst).
__getattr__ = _module_getattr(__name__)

__all__ = [
    "AsyncExecution",
    "BaseParallelExecutor",
    "BaseResult",
    "DONE",
    "DictResult",
    "ExecutorNamespace",
    "FAILED",
    "FailedTask",
    "ListResult",
    "NOT_STARTED",
    "NamedMapResult",
    "PROCESS_EXECUTOR",
    "ParallelArg",
    "ParallelFunction",
    "ParallelJob",
    "ParallelStatus",
    "ProcessExecutor",
    "STARTED",
    "SequentialMapResult",
    "THREAD_EXECUTOR",
    "ThreadExecutor",
    "TimeoutException",
    "arg",
    "async_map",
    "async_par",
    "decorate",
    "decorated",
    "exceptions",
    "future",
    "job",
    "map",
    "models",
    "par",
    "process",
    "shutdown",
    "split",
    "thread",
    "utils",
]
