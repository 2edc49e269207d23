"""parallel: run functions in parallel, on threads or processes, with one call.

``parallel.map(fn, params)`` calls one function once per parameter;
``parallel.par(calls)`` runs different calls; ``async_map`` / ``async_par``
start them and return at once.  Threads run on lateral's native pool (the
``_lateral`` core); processes on standard ``concurrent.futures`` process
pools; any ``concurrent.futures.Executor`` can be passed as ``executor=``.
See docs/parallel.md.
"""
from . import exceptions
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
    thread,
)
from .decorators import ParallelFunction, decorate, decorated
from .exceptions import TimeoutException
from .models import BaseResult, DictResult, FailedTask, ListResult, arg, future

__all__ = [
    "AsyncExecution",
    "BaseResult",
    "DictResult",
    "ExecutorNamespace",
    "FailedTask",
    "ListResult",
    "PROCESS_EXECUTOR",
    "ParallelFunction",
    "THREAD_EXECUTOR",
    "TimeoutException",
    "arg",
    "async_map",
    "async_par",
    "decorate",
    "decorated",
    "exceptions",
    "future",
    "map",
    "par",
    "process",
    "shutdown",
    "thread",
]
