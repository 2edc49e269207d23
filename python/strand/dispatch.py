"""dispatch: start many tasks at once and collect their outcomes."""
import time
from collections.abc import Callable, Generator, Iterable
from typing import Any, Generic, TypeVar

import _lateral

from .base import Taskrunner
from .decorator import resolve_target
from .handles import COMPLETE, ERROR, NEW, RUNNING, CompletedHandle, Handle

_R = TypeVar("_R")


class Args:
    """The arguments of one dispatched call: ``Args(1, 2, key=3)``."""

    __slots__ = ("args", "kwargs")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"Args({', '.join(parts)})"




def dispatch(func: Callable[..., _R], items: Iterable[Any],
             target: str | type[Taskrunner[Any]] = "thread",
             **runner_kwargs: Any) -> "Dispatch[_R]":
    """Start one call of ``func`` per item on a taskrunner of ``target`` and
    return a :class:`Dispatch` collecting results, statuses and errors.

    ``func`` is a function (a runner of ``target`` is made with
    ``runner_kwargs``: callbacks, a store...) or a Taskrunner (used as is).
    An item becomes a call's arguments by the rule of ``parallel.map``: an
    :class:`Args` is explicit; a tuple or a list is the positional
    arguments, a trailing dict in it the keyword arguments; a dict is the
    keyword arguments; anything else (a namedtuple too) is the single
    argument.  A call that cannot even start counts as an error of its item.
    """
    try:
        items = iter(items)
    except TypeError:
        raise TypeError(f"dispatch needs an iterable of items, got {type(items).__name__}: "
                        f"{items!r}") from None
    runner = func if isinstance(func, Taskrunner) else resolve_target(target)(func, **runner_kwargs)
    dispatched = Dispatch(runner)
    for item in items:
        dispatched.submit(item)
    return dispatched


class Dispatch(Generic[_R]):
    """The outcome of :func:`dispatch`; more calls can be added with
    :meth:`submit`.  ``results``, ``errors`` and ``statuses`` are snapshots
    in submission order; :meth:`wait` blocks until every call is done.

    For type checkers a ``Dispatch[R]``: ``R`` is what the function returns."""

    def __init__(self, runner: Taskrunner[_R]) -> None:
        if not isinstance(runner, Taskrunner):
            raise TypeError(f"Dispatch needs a strand Taskrunner, got {runner!r}")
        self.runner = runner
        self.handles: list[Handle[_R]] = []

    def submit(self, item: object) -> int:
        """Start one more call; returns its index."""
        args, kwargs = _lateral.split_args(item, True, Args)
        try:
            handle = self.runner._submit(args, kwargs)
        except Exception as exc:
            handle = CompletedHandle(self.runner.name, exc=exc)
        self.handles.append(handle)
        return len(self.handles) - 1

    def __len__(self) -> int:
        return len(self.handles)

    def done(self) -> bool:
        """True when every call has finished."""
        return all(handle.done() for handle in self.handles)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for every call (at most ``timeout`` seconds); True if all done."""
        timeout = _lateral.check_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        for handle in self.handles:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not handle.join(remaining):
                return False
        return True

    join = wait

    @property
    def statuses(self) -> list[str]:
        """Each call's status: ``new``, ``running``, ``complete`` or ``error``."""
        return [handle.status for handle in self.handles]

    def counts(self) -> dict[str, int]:
        """How many calls have each status, e.g. ``{'complete': 9, 'error': 1, ...}``."""
        counts = dict.fromkeys((NEW, RUNNING, COMPLETE, ERROR), 0)
        for status in self.statuses:
            counts[status] += 1
        return counts

    @property
    def results(self) -> list[_R | None]:
        """Each call's return value (None where it failed or is not done)."""
        return [handle.result(0) if handle.status == COMPLETE else None
                for handle in self.handles]

    @property
    def errors(self) -> dict[int, BaseException]:
        """``{index: exception}`` of the calls that failed (including
        exceptions that ``on_error`` handled)."""
        errors: dict[int, BaseException] = {}
        for index, handle in enumerate(self.handles):
            if handle.done():
                exc = handle.exception(0)
                if exc is not None:
                    errors[index] = exc
        return errors

    def result(self, timeout: float | None = None) -> list[_R | None]:
        """Wait, then return the results list or raise the first error (by index)."""
        if not self.wait(timeout):
            raise TimeoutError(f"the dispatched calls did not all finish within {timeout} s")
        errors = self.errors
        if errors:
            raise errors[min(errors)]
        return self.results

    def __await__(self) -> Generator[Any, None, list[_R | None]]:
        return self._gather().__await__()

    async def _gather(self) -> list[_R | None]:
        for handle in self.handles:
            task = getattr(handle, "task", None)
            if task is not None:
                try:
                    await task
                except Exception:
                    pass
        return self.results
