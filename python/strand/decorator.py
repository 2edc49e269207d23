"""as_task: the decorator form of the taskrunners."""
import functools
from collections.abc import Callable
from typing import Any, Literal, TypeVar, overload

from .base import Taskrunner
from .constants import COROUTINE, PROCESS, STORE, SYNC, THREAD
from .coroutine import CoroutineTaskrunner
from .process import MultiprocessTaskrunner
from .threads import ThreadTaskrunner
from .writer import StoreTaskWriter

_R = TypeVar("_R")

#: The string targets of :func:`as_task` and the classes they name.
TARGETS: dict[str, type[Taskrunner[Any]]] = {
    THREAD: ThreadTaskrunner,
    PROCESS: MultiprocessTaskrunner,
    COROUTINE: CoroutineTaskrunner,
    STORE: StoreTaskWriter,
    SYNC: Taskrunner,
}


def resolve_target(target: str | type[Taskrunner[Any]]) -> type[Taskrunner[Any]]:
    """The Taskrunner class for a target string or class."""
    if isinstance(target, type) and issubclass(target, Taskrunner):
        return target
    if isinstance(target, str) and target in TARGETS:
        return TARGETS[target]
    valid = ", ".join(repr(name) for name in TARGETS)
    raise ValueError(f"unknown taskrunner target {target!r}; use one of {valid} "
                     "or a Taskrunner subclass")


# The runner's class follows the target, for type checkers too.
@overload
def as_task(target: type[Taskrunner[Any]], **kwargs: Any,  # type: ignore[overload-overlap]
            ) -> Callable[[Callable[..., Any]], Taskrunner[Any]]:
    ...


@overload
def as_task(target: Literal["thread"] = ..., **kwargs: Any,
            ) -> Callable[[Callable[..., _R]], ThreadTaskrunner[_R]]:
    ...


@overload
def as_task(target: Literal["process"], **kwargs: Any,
            ) -> Callable[[Callable[..., _R]], MultiprocessTaskrunner[_R]]:
    ...


@overload
def as_task(target: Literal["coroutine"], **kwargs: Any,
            ) -> Callable[[Callable[..., _R]], CoroutineTaskrunner[_R]]:
    ...


@overload
def as_task(target: Literal["store"], **kwargs: Any,
            ) -> Callable[[Callable[..., _R]], StoreTaskWriter[_R]]:
    ...


@overload
def as_task(target: Literal["sync"], **kwargs: Any,
            ) -> Callable[[Callable[..., _R]], Taskrunner[_R]]:
    ...


@overload
def as_task(target: Callable[..., _R]) -> ThreadTaskrunner[_R]:
    ...


def as_task(target: Any = THREAD, **kwargs: Any) -> Any:
    """Decorator: replace a function by a taskrunner of ``target`` made with
    ``kwargs`` (callbacks, init keywords, a store...).

    ``target``: ``'thread'`` (default), ``'process'``, ``'coroutine'``,
    ``'store'``, ``'sync'`` or a Taskrunner subclass; anything else raises
    ValueError listing these.  ``@as_task`` without arguments means
    ``@as_task('thread')``.  The runner keeps the function's name and doc.
    ``@as_task('store', store=None, pickle_func=True)`` is accepted: the
    store is set later (``fn.store = ...``), before the first call.
    """
    if callable(target) and not isinstance(target, type):
        return as_task("thread")(target)  # used bare: @as_task
    runner_class = resolve_target(target)

    def decorate(func: Callable[..., Any]) -> Taskrunner[Any]:
        runner = runner_class(func, **kwargs)
        functools.update_wrapper(runner, func)
        return runner

    return decorate
