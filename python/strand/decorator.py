"""as_task: the decorator form of the taskrunners."""
import functools

from .base import Taskrunner
from .constants import COROUTINE, PROCESS, STORE, SYNC, THREAD
from .coroutine import CoroutineTaskrunner
from .process import MultiprocessTaskrunner
from .threads import ThreadTaskrunner
from .writer import StoreTaskWriter

#: The string targets of :func:`as_task` and the classes they name.
TARGETS = {
    THREAD: ThreadTaskrunner,
    PROCESS: MultiprocessTaskrunner,
    COROUTINE: CoroutineTaskrunner,
    STORE: StoreTaskWriter,
    SYNC: Taskrunner,
}


def resolve_target(target):
    """The Taskrunner class for a target string or class."""
    if isinstance(target, type) and issubclass(target, Taskrunner):
        return target
    if isinstance(target, str) and target in TARGETS:
        return TARGETS[target]
    valid = ", ".join(repr(name) for name in TARGETS)
    raise ValueError(f"unknown taskrunner target {target!r}; use one of {valid} "
                     "or a Taskrunner subclass")


def as_task(target=THREAD, **kwargs):
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

    def decorate(func):
        return functools.update_wrapper(runner_class(func, **kwargs), func)

    return decorate
