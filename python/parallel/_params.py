"""Reading the user's parameters and options into one plain form.

How a parameter becomes a call's arguments is the core's one rule,
``_lateral.split_args`` (batch.c): the thread executor applies it in C as it
calls, the other executors and the reporting of failed calls through
``Work.call_args``.
"""
import concurrent.futures
import os

import _lateral

from .models import arg, call_of

#: ``executor=`` value: run the calls on threads of lateral's native pool (the default).
THREAD_EXECUTOR = "thread"
#: ``executor=`` value: run the calls in worker processes (``multiprocessing.Pool``).
PROCESS_EXECUTOR = "process"
_EXECUTOR_NAMES = (THREAD_EXECUTOR, PROCESS_EXECUTOR)


class Work:
    """What to run: ``fn`` over ``items`` (map), or ``calls`` (par: fn=None and
    every item a ``(fn, args, kwargs)`` triple).  ``keys`` is None for a
    sequence of parameters, else the dict's keys in order."""

    __slots__ = ("name", "fn", "items", "keys", "unpack", "extras")

    def __init__(self, name, fn, items, keys, unpack, extras):
        self.name = name
        self.fn = fn
        self.items = items
        self.keys = keys
        self.unpack = unpack
        self.extras = extras

    def label(self, index):
        """How an error message names parameter number ``index``."""
        if self.keys is None:
            return f"parameter {index}"
        return f"parameter {self.keys[index]!r}"

    def call_args(self, index):
        """The (args tuple, kwargs dict) that call number ``index`` receives."""
        item = self.items[index]
        if self.fn is None:
            _, args, kwargs = item
        else:
            args, kwargs = _lateral.split_args(item, self.unpack, arg)
        if self.extras:
            kwargs = {**self.extras, **(kwargs or {})}
        return args, dict(kwargs or {})


def read_params(params, what):
    """(items list, keys list or None) from a sequence or a dict."""
    if isinstance(params, dict):
        return list(params.values()), list(params)
    if isinstance(params, (str, bytes, bytearray)):
        raise TypeError(f"{what} needs a sequence or a dict of parameters, got "
                        f"{type(params).__name__} {params!r}; wrap one parameter in a list")
    if type(params) is list:
        return params, None
    try:
        return list(params), None
    except TypeError:
        raise TypeError(f"{what} needs a sequence or a dict of parameters, got "
                        f"{type(params).__name__}") from None


def map_work(fn, params, extras, unpack_arguments, what):
    """The Work of ``map(fn, params, ...)``."""
    if not callable(fn):
        raise TypeError(f"{what} needs a callable first, got {fn!r}")
    items, keys = read_params(params, what)
    return Work(what, fn, items, keys, bool(unpack_arguments), check_extras(extras))


def par_work(params, extras, unpack_arguments, what):
    """The Work of ``par(params, ...)``: every entry becomes (fn, args, kwargs)."""
    entries, keys = read_params(params, what)
    unpack = bool(unpack_arguments)
    calls = []
    for index, entry in enumerate(entries):
        name = f"{keys[index]!r}" if keys is not None else str(index)
        calls.append(call_of(entry, unpack, f"{what}: entry {name}"))
    return Work(what, None, calls, keys, unpack, check_extras(extras))


def check_extras(extras):
    if extras is None:
        return None
    if not isinstance(extras, dict):
        raise TypeError(f"extras must be a dict of keyword arguments, got {extras!r}")
    for key in extras:
        if not isinstance(key, str):
            raise TypeError(f"extras keys must be argument names (str), got {key!r}")
    return dict(extras)


def check_executor(executor):
    """'thread', 'process' or a concurrent.futures.Executor instance."""
    if executor is None:
        return THREAD_EXECUTOR
    if isinstance(executor, str):
        if executor not in _EXECUTOR_NAMES:
            raise ValueError(f"executor must be parallel.THREAD_EXECUTOR ('thread'), "
                             f"parallel.PROCESS_EXECUTOR ('process') or a "
                             f"concurrent.futures.Executor, got {executor!r}")
        return executor
    if isinstance(executor, concurrent.futures.Executor):
        return executor
    raise TypeError(f"executor must be 'thread', 'process' or a concurrent.futures."
                    f"Executor instance, got {type(executor).__name__}")


def check_max_workers(max_workers):
    """None, or the core's worker-count rule: also applied to processes, so
    it is checked before a process pool forks anything."""
    return None if max_workers is None else _lateral.check_workers(max_workers)


def default_thread_workers():
    """Like ThreadPoolExecutor: min(32, CPUs + 4)."""
    return min(32, (os.cpu_count() or 1) + 4)


def default_process_workers():
    """Like ProcessPoolExecutor: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1
