"""CoroutineTaskrunner: runs the function as a coroutine on an event loop."""
import asyncio
import collections.abc
import concurrent.futures
import inspect
from collections.abc import Callable, Generator
from typing import Any, TypeVar, cast

from ._util import iterates_items
from .base import Taskrunner
from .handles import CompletedHandle, Handle, Outcome

_R = TypeVar("_R")


class CoroutineTaskrunner(Taskrunner[_R]):
    """Runs ``func`` in a coroutine.

    Called while an event loop is running in this thread, the call schedules
    a task on that loop and returns it (an ``asyncio.Task``: await it for the
    return value).  Called from synchronous code, it runs the coroutine to
    completion on a new event loop and returns the value.

    ``func`` may be a coroutine function, a plain function, or return an
    awaitable, an async iterable or an iterable; callbacks may be coroutine
    functions too.  With ``yield_on_iter=True`` (the default) the runner
    awaits ``asyncio.sleep(0)`` after every item given to ``on_iter``, so
    other tasks of the loop run between items.
    """

    def __init__(self, func: Callable[..., _R], *init_args: Any, yield_on_iter: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(func, *init_args, **kwargs)
        self.yield_on_iter = bool(yield_on_iter)

    # An asyncio.Task inside a running loop, else the value: truly dynamic.
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        loop = _running_loop()
        if loop is not None:
            return loop.create_task(self.run_async(*args, **kwargs))
        return asyncio.run(self.run_async(*args, **kwargs))

    async def run_async(self, *args: Any, **kwargs: Any) -> Any:
        """The coroutine a call runs: ``await runner.run_async(...)``."""
        return await self._execute_async(args, kwargs, None)

    async def _execute_async(self, args: tuple[Any, ...], kwargs: dict[str, Any],
                             outcome: Outcome | None) -> Any:
        try:
            full_args, full_kwargs = self._merged(args, kwargs)
            result = self.func(*full_args, **full_kwargs)
            if inspect.isawaitable(result):
                result = await result
            await self._deliver_async(result)
            return result
        except Exception as exc:
            if self.on_error is None:
                raise
            if outcome is not None:
                outcome.handled_error = exc
            await _maybe_await(self.on_error(exc))
            return None

    async def _deliver_async(self, result: Any) -> None:
        if self.on_iter is not None:
            if isinstance(result, collections.abc.AsyncIterable):
                async for item in result:
                    await self._on_item(item)
            elif iterates_items(result):
                for item in result:
                    await self._on_item(item)
        if self.on_end is not None:
            await _maybe_await(self.on_end(result))

    async def _on_item(self, item: Any) -> None:
        on_iter = cast(Callable[[Any], object], self.on_iter)  # items go only to it
        await _maybe_await(on_iter(item))
        if self.yield_on_iter:
            await asyncio.sleep(0)

    def _submit(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Handle[Any]:
        outcome = Outcome()
        loop = _running_loop()
        if loop is None:
            try:
                value = asyncio.run(self._execute_async(args, kwargs, outcome))
            except Exception as exc:
                return CompletedHandle(self.name, exc=exc, outcome=outcome)
            return CompletedHandle(self.name, value, outcome=outcome)
        task = loop.create_task(self._execute_async(args, kwargs, outcome))
        return AsyncioHandle(task, self.name, outcome)


class AsyncioHandle(Handle[_R]):
    """The handle of a call scheduled on a running event loop.  It cannot be
    waited on from the loop's own thread (that would block the loop): await
    ``handle.task`` there."""

    def __init__(self, task: "asyncio.Task[_R]", name: str, outcome: Outcome | None) -> None:
        self.task = task
        self.name = name
        self._outcome_box = outcome

    def done(self) -> bool:
        """True once the task has finished."""
        return self.task.done()

    def __await__(self) -> Generator[Any, None, _R]:
        return self.task.__await__()

    def _wait(self, timeout: float | None) -> bool:
        if self.task.done():
            return True
        if _running_loop() is self.task.get_loop():
            raise RuntimeError(f"cannot block on {self.name} from its own event loop; "
                               "await it instead")
        future = asyncio.run_coroutine_threadsafe(_wait_for(self.task), self.task.get_loop())
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:  # not the builtin before 3.11
            return False
        except Exception:
            pass
        return True

    def _outcome(self) -> tuple[_R | None, BaseException | None]:
        if self.task.cancelled():
            return None, asyncio.CancelledError(f"{self.name} was cancelled")
        exc = self.task.exception()
        return (None, exc) if exc is not None else (self.task.result(), None)


async def _wait_for(task: "asyncio.Task[Any]") -> None:
    await asyncio.wait([task])


async def _maybe_await(value: object) -> None:
    if inspect.isawaitable(value):
        await value


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
