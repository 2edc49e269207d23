"""ThreadTaskrunner: runs the function on the C core's worker pool."""
import inspect
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

import _lateral
import _lateral_exit

from .base import Taskrunner
from .handles import Outcome, TaskHandle

_R = TypeVar("_R")
_pool: _lateral.Pool | None = None
_pool_lock = threading.Lock()


def _pool_size() -> int:
    size = _lateral.workers_from_env("STRAND_WORKERS")
    return size if size is not None else max(4, 5 * (os.cpu_count() or 1))


def thread_pool() -> _lateral.Pool:
    """The process's shared strand pool (a ``_lateral.Pool`` named ``strand``),
    created on first use and again in a forked child.  Its size is
    ``$STRAND_WORKERS``, else 5 x the CPU count (at least 4); its threads
    start only when work arrives."""
    global _pool
    pool = _pool
    if pool is not None and not pool.forked and not pool.closed:
        return pool
    # In C (locked_call), for the program's thread takes it, where Ctrl-C
    # lands: left held by a with block, no thread could start a task again.
    return _lateral.locked_call(_pool_lock, _usable_pool)


def _usable_pool() -> _lateral.Pool:
    """Contract: _pool_lock held."""
    global _pool
    pool = _pool
    if pool is None or pool.forked or pool.closed:
        pool = _pool = _lateral.Pool(_pool_size(), "strand")
    return pool


def start_on_pool(fn: Callable[..., object], args: tuple[Any, ...]) -> _lateral.Batch:
    """Start ``fn(*args)`` on the shared pool; return its core batch, which
    the interpreter's exit waits for."""
    batch = thread_pool().call(fn, args)
    _unfinished.add(batch)
    return batch


def submit_to_pool(fn: Callable[..., _R], args: tuple[Any, ...], name: str,
                   outcome: Outcome | None = None) -> TaskHandle[_R]:
    """Run ``fn(*args)`` on the shared pool; return its :class:`TaskHandle`."""
    return TaskHandle(start_on_pool(fn, args), name, outcome)


#: The calls started on the shared pool (until done and unreferenced).
_unfinished: _lateral_exit.Unfinished[_lateral.Batch] = _lateral_exit.Unfinished()

# Every call started on the shared pool finishes before the interpreter
# exits, as a non-daemon threading.Thread would (a call cancelled before it
# started is done at once); so do the calls those calls start.
_lateral_exit.wait_at_exit(_unfinished, lambda batch: batch.wait(None))


class ThreadTaskrunner(Taskrunner[_R]):
    """Runs ``func`` on a thread of strand's shared worker pool (threads are
    reused, not started per call).  A call returns a :class:`TaskHandle` at
    once; ``handle.result()`` waits and gives the return value or raises the
    exception.  Callbacks run in the worker thread after ``func`` returns.

    Safety check: a coroutine function is refused (calling it in a thread
    would only create a coroutine object); use ``CoroutineTaskrunner``.
    """

    def __init__(self, func: Callable[..., _R], *init_args: Any, **kwargs: Any) -> None:
        super().__init__(func, *init_args, **kwargs)
        if self.safety_checks and inspect.iscoroutinefunction(self.func):
            raise TypeError(f"{self.name} is a coroutine function: a thread would only "
                            "create the coroutine, not run it; use CoroutineTaskrunner "
                            "(or safety_checks=False)")

    def __call__(self, *args: Any, **kwargs: Any) -> TaskHandle[_R]:
        return self._submit(args, kwargs)

    def _submit(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskHandle[_R]:
        outcome = Outcome()
        execute = cast(Callable[..., _R], self._execute)  # None only when on_error handled it
        return submit_to_pool(execute, (args, kwargs, outcome), self.name, outcome)
