"""Reading the user's parameters and options into one plain form.

How a parameter becomes a call's arguments is the core's one rule,
``_lateral.split_args`` (batch.c): the thread executor applies it in C as it
calls, the other executors and the reporting of failed calls through
``Work.call_args``.
"""
import concurrent.futures
import os
import reprlib
from collections.abc import Callable, Iterable
from typing import Any, Literal, cast

import _lateral

from .models import arg, call_of

#: ``executor=`` value: run the calls on threads of lateral's native pool (the default).
THREAD_EXECUTOR: Literal["thread"] = "thread"
#: ``executor=`` value: run the calls in parallel's own worker processes.
PROCESS_EXECUTOR: Literal["process"] = "process"
#: What ``executor=`` takes: 'thread', 'process' or an Executor instance.
ExecutorArg = Literal["thread", "process"] | concurrent.futures.Executor
#: A call of ``par``: (function, positional arguments, keyword arguments or None).
Call = tuple[Callable[..., Any] | None, tuple[Any, ...], dict[str, Any] | None]
_EXECUTOR_NAMES = (THREAD_EXECUTOR, PROCESS_EXECUTOR)


class Work:
    """What to run: ``fn`` over ``items`` (map), or ``calls`` (par: fn=None and
    every item a ``(fn, args, kwargs)`` triple).  ``keys`` is None for a
    sequence of parameters, else the dict's keys in order."""

    __slots__ = ("name", "fn", "items", "keys", "unpack", "extras")

    def __init__(self, name: str, fn: Callable[..., Any] | None, items: list[Any],
                 keys: list[Any] | None, unpack: bool, extras: dict[str, Any] | None) -> None:
        self.name = name
        self.fn = fn
        self.items = items
        self.keys = keys
        self.unpack = unpack
        self.extras = extras

    def label(self, index: int) -> str:
        """How an error message names parameter number ``index``."""
        if self.keys is None:
            return f"parameter {index}"
        return f"parameter {self.keys[index]!r}"

    def position(self, index: int) -> str:
        """Where call number ``index`` is in the input: ``item 3`` or ``key 'b'``."""
        if self.keys is None:
            return f"item {index}"
        return f"key {self.keys[index]!r}"

    def failure_note(self, index: int) -> str:
        """The note added to the exception of call number ``index`` when it
        is raised: ``parallel.map item 3 (argument 7) failed``, ``parallel.par
        key 'b' (fetch) failed``."""
        if not self.has_item(index):
            what = "gone from the list"
        elif self.fn is None:
            what = _short_repr(self.items[index][0], _function_name)
        else:
            what = "argument " + _short_repr(self.items[index], _REPR.repr)
        return f"{self.name} {self.position(index)} ({what}) failed"

    def has_item(self, index: int) -> bool:
        """Whether item ``index`` is still there: the thread executor reads
        the caller's list as the calls run, and a call may shrink it."""
        return index < len(self.items)

    def late_calls(self, indexes: list[int], shown: int = 10) -> str:
        """``items 3, 5`` or ``keys 'b', 'c'``: the calls numbered
        ``indexes`` (at most ``shown`` of them, then how many more)."""
        if self.keys is None:
            names = [str(i) for i in indexes[:shown]]
            what = "item" if len(indexes) == 1 else "items"
        else:
            names = [repr(self.keys[i]) for i in indexes[:shown]]
            what = "key" if len(indexes) == 1 else "keys"
        more = f" and {len(indexes) - shown} more" if len(indexes) > shown else ""
        return f"{what} {', '.join(names)}{more}"

    def call_args(self, index: int) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The (args tuple, kwargs dict) that call number ``index`` receives
        (none for an item gone from the list)."""
        if not self.has_item(index):
            return (), {}
        item = self.items[index]
        if self.fn is None:
            _, args, kwargs = item
        else:
            args, kwargs = _lateral.split_args(item, self.unpack, arg)
        if self.extras:
            kwargs = {**self.extras, **(kwargs or {})}
        return args, dict(kwargs or {})


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60


def _function_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _short_repr(value: Any, show: Callable[[Any], str]) -> str:
    """``show(value)``, cut to a line's length; a repr that fails is no
    reason to hide the call's own error."""
    try:
        text = show(value)
    except Exception:
        return f"<{type(value).__name__} object>"
    return text if len(text) <= 80 else text[:77] + "..."


def read_params(params: object, what: str) -> tuple[list[Any], list[Any] | None]:
    """(items list, keys list or None) from a sequence or a dict."""
    if isinstance(params, dict):
        return list(params.values()), list(params)
    if isinstance(params, (str, bytes, bytearray)):
        raise TypeError(f"{what} needs a sequence or a dict of parameters, got "
                        f"{type(params).__name__} {params!r}; wrap one parameter in a list")
    if type(params) is list:
        return params, None
    try:
        return list(cast(Iterable[Any], params)), None  # TypeError if it is not
    except TypeError:
        raise TypeError(f"{what} needs a sequence or a dict of parameters, got "
                        f"{type(params).__name__}") from None


def map_work(fn: Callable[..., Any], params: object, extras: dict[str, Any] | None,
             unpack_arguments: bool, what: str) -> Work:
    """The Work of ``map(fn, params, ...)``."""
    if not callable(fn):
        raise TypeError(f"{what} needs a callable first, got {fn!r}")
    items, keys = read_params(params, what)
    return Work(what, fn, items, keys, bool(unpack_arguments), check_extras(extras))


def par_work(params: object, extras: dict[str, Any] | None, unpack_arguments: bool,
             what: str) -> Work:
    """The Work of ``par(params, ...)``: every entry becomes (fn, args, kwargs)."""
    entries, keys = read_params(params, what)
    unpack = bool(unpack_arguments)
    calls: list[Call] = []
    for index, entry in enumerate(entries):
        name = f"{keys[index]!r}" if keys is not None else str(index)
        calls.append(call_of(entry, unpack, f"{what}: entry {name}"))
    return Work(what, None, calls, keys, unpack, check_extras(extras))


def check_extras(extras: object) -> dict[str, Any] | None:
    if extras is None:
        return None
    if not isinstance(extras, dict):
        raise TypeError(f"extras must be a dict of keyword arguments, got {extras!r}")
    for key in extras:
        if not isinstance(key, str):
            raise TypeError(f"extras keys must be argument names (str), got {key!r}")
    return dict(extras)


def check_executor(executor: object) -> ExecutorArg:
    """'thread', 'process' or a concurrent.futures.Executor instance."""
    if executor is None:
        return THREAD_EXECUTOR
    if isinstance(executor, str):
        if executor not in _EXECUTOR_NAMES:
            raise ValueError(f"executor must be parallel.THREAD_EXECUTOR ('thread'), "
                             f"parallel.PROCESS_EXECUTOR ('process') or a "
                             f"concurrent.futures.Executor, got {executor!r}")
        return cast(ExecutorArg, executor)
    if isinstance(executor, concurrent.futures.Executor):
        return executor
    raise TypeError(f"executor must be 'thread', 'process' or a concurrent.futures."
                    f"Executor instance, got {type(executor).__name__}")


def check_max_workers(max_workers: int | None) -> int | None:
    """None, or the core's worker-count rule: also applied to processes, so
    it is checked before a process pool forks anything."""
    return None if max_workers is None else _lateral.check_workers(max_workers)


def default_thread_workers() -> int:
    """Like ThreadPoolExecutor: min(32, CPUs + 4)."""
    return min(32, (os.cpu_count() or 1) + 4)


def default_process_workers() -> int:
    """Like ProcessPoolExecutor: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1
