"""Reading the user's parameters and options into one plain form.

The thread executor leaves the unpacking of parameters to the core (C); the
other executors, and the reporting of failed calls, use split_params(), which
follows the same rules.
"""
import concurrent.futures
import os

import _lateral

from .models import arg, future

THREAD_EXECUTOR = "thread"
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
            args, kwargs = split_params(item, self.unpack)
        if self.extras:
            kwargs = {**self.extras, **(kwargs or {})}
        return args, dict(kwargs or {})


def split_params(item, unpack=True):
    """(args, kwargs) of one map parameter: a tuple is the positional
    arguments (a trailing dict in it the keywords), a dict is keywords only,
    a :class:`parallel.arg` is explicit, anything else is the one argument."""
    if not unpack:
        return (item,), None
    if type(item) is tuple:
        if item and isinstance(item[-1], dict):
            return item[:-1], item[-1]
        return item, None
    if isinstance(item, dict):
        return (), item
    if isinstance(item, arg):
        return item.args, item.kwargs
    return (item,), None


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


def par_work(params, extras, what):
    """The Work of ``par(params, ...)``: every entry becomes (fn, args, kwargs)."""
    entries, keys = read_params(params, what)
    calls = []
    for index, entry in enumerate(entries):
        name = f"{keys[index]!r}" if keys is not None else str(index)
        calls.append(_to_call(entry, name, what))
    return Work(what, None, calls, keys, True, check_extras(extras))


def _to_call(entry, name, what):
    if isinstance(entry, future):
        return entry.fn, entry.args, entry.kwargs
    if isinstance(entry, tuple) and entry and callable(entry[0]):
        args = tuple(entry[1:])
        if args and isinstance(args[-1], dict):
            return entry[0], args[:-1], args[-1]
        return entry[0], args, None
    if callable(entry):
        return entry, (), None
    raise TypeError(f"{what}: entry {name} must be parallel.future(fn, ...), a tuple "
                    f"(fn, arg1, ..., {{'kw': value}}) or a callable, got {entry!r}")


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
