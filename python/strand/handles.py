"""Handles: what a non-blocking call returns, to wait on and read the outcome.

Every handle has ``done()``, ``join(timeout)``, ``result(timeout)``,
``exception(timeout)`` and ``status`` (one of the task statuses below), so
code that collects outcomes (``strand.dispatch``) treats every target alike.
A handle can be awaited (asyncio, trio, anyio): ``await handle`` is
``handle.result()`` without blocking the event loop.
"""
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import _lateral

_R = TypeVar("_R")

#: Status of a task not started yet (a store task: written, not claimed yet).
NEW = "new"
#: Status of a task running (a store task: claimed by a reader).
RUNNING = "running"
#: Status of a task that returned.
COMPLETE = "complete"
#: Status of a task that raised.
ERROR = "error"

#: The statuses a task goes through, in order (``error`` replaces ``complete``).
STATUSES = (NEW, RUNNING, COMPLETE, ERROR)


def status_fields(status: str) -> dict[str, str]:
    """The fields of a store record that hold its status: lateral's
    ``status`` and, for other consumers of the store, the published strand
    writer's ``task_status``.  Every write of a status goes through here."""
    return {"status": status, "task_status": status}


class Outcome:
    """Filled in by the code running a task: an exception that ``on_error``
    handled, so the handle reports ``status == 'error'`` although the call
    itself returned normally."""

    __slots__ = ("handled_error",)

    def __init__(self) -> None:
        self.handled_error: Exception | None = None


class Handle(Generic[_R]):
    """Base of the handles; subclasses implement ``_wait``, ``done``,
    ``_outcome`` (a ``(result, exception)`` pair once done) and, to be
    awaited before they are done, ``_until_done``.

    For type checkers a ``Handle[R]``: ``R`` is what the function returns
    (``result()`` gives ``None`` instead when ``on_error`` handled an
    exception)."""

    name = "task"
    _outcome_box: Outcome | None

    if TYPE_CHECKING:  # what every subclass implements
        def done(self) -> bool:
            """True once the task has finished."""

        def _wait(self, timeout: float | None) -> bool:
            ...

        def _outcome(self) -> tuple[_R | None, BaseException | None]:
            ...

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the task has finished (or ``timeout`` seconds passed);
        return True when it has finished."""
        return self._wait(_lateral.check_timeout(timeout))

    wait = join

    def is_alive(self) -> bool:
        """``not done()``: the name of ``threading.Thread`` and
        ``multiprocessing.Process``, which the published runners returned."""
        return not self.done()

    def result(self, timeout: float | None = None) -> _R:
        """The task's return value; raises the task's exception if it failed
        (and ``on_error`` did not handle it), TimeoutError if not done in time."""
        self._require_done(timeout)
        value, exc = self._outcome()
        if exc is not None:
            raise exc
        return value  # type: ignore[return-value]  # None only when on_error handled it

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The exception the task raised (``None`` if it succeeded); an
        exception that ``on_error`` handled is returned too."""
        self._require_done(timeout)
        exc = self._outcome()[1]
        return exc if exc is not None else self._handled_error()

    @property
    def status(self) -> str:
        """``'new'`` (queued), ``'running'``, ``'complete'`` or ``'error'``."""
        if not self.done():
            return RUNNING if self._started() else NEW
        failed = self._outcome()[1] is not None or self._handled_error() is not None
        return ERROR if failed else COMPLETE

    def __await__(self) -> Generator[Any, None, _R]:
        """``await handle``: what :meth:`result` gives or raises, without
        blocking the event loop."""
        return self._result_async().__await__()

    async def _result_async(self) -> _R:
        if not self.done():
            await self._until_done()
        return self.result(timeout=0)

    async def _until_done(self) -> None:
        """Suspend the awaiting task until :meth:`done` is True."""
        raise NotImplementedError(f"{type(self).__name__} cannot be awaited")

    def _require_done(self, timeout: float | None) -> None:
        if not self._wait(_lateral.check_timeout(timeout)):
            raise TimeoutError(f"{self.name} did not finish within {timeout} seconds")

    def _handled_error(self) -> Exception | None:
        outcome: Outcome | None = getattr(self, "_outcome_box", None)
        return None if outcome is None else outcome.handled_error

    def _started(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.status}>"


class CompletedHandle(Handle[_R]):
    """The handle of a task that already ran in the calling thread."""

    def __init__(self, name: str, value: _R | None = None, exc: BaseException | None = None,
                 outcome: Outcome | None = None) -> None:
        self.name = name
        self._value = value
        self._exc = exc
        self._outcome_box = outcome

    def done(self) -> bool:
        """Always True."""
        return True

    def _wait(self, timeout: float | None) -> bool:
        return True

    def _outcome(self) -> tuple[_R | None, BaseException | None]:
        return self._value, self._exc


class TaskHandle(Handle[_R]):
    """The joinable handle of a call running on strand's thread pool (a
    ``ThreadTaskrunner`` call, or a process runner's supervising call)."""

    def __init__(self, batch: _lateral.Batch, name: str, outcome: Outcome | None) -> None:
        self._batch = batch
        self.name = name
        self._outcome_box = outcome

    def done(self) -> bool:
        """True once the call has returned, raised or was cancelled."""
        return self._batch.done

    def cancel(self) -> bool:
        """Stop the call from starting if it has not started yet; True if so."""
        return self._batch.cancel() == 1

    def cancelled(self) -> bool:
        """True if :meth:`cancel` stopped the call before it started."""
        # the core also sets ``cancelled`` when the call failed (stop on error)
        return bool(self._batch.cancelled) and self._batch.started == 0

    def _wait(self, timeout: float | None) -> bool:
        return self._batch.wait(timeout)

    async def _until_done(self) -> None:
        # The batch's done callback wakes the event loop: nothing polls.
        # wait(0) first: in a forked child it raises instead of never ending.
        if self._batch.wait(0):
            return
        from parallel import _aio
        subscribe: _aio.Subscribe = \
            lambda wake: self._batch.add_done_callback(lambda _batch: wake())
        await _aio.wait_done(subscribe, self._cancel_unstarted)

    def _cancel_unstarted(self) -> None:
        """The awaiting task was cancelled: skip the call if not started."""
        self.cancel()

    def _started(self) -> bool:
        return self._batch.started > 0

    def _outcome(self) -> tuple[_R | None, BaseException | None]:
        if self.cancelled():
            return None, CancelledTask(f"{self.name} was cancelled before it started")
        exc = self._batch.errors.get(0)
        return (None, exc) if exc is not None else (self._batch.results[0], None)


class CancelledTask(Exception):
    """Raised by ``result()`` of a handle whose call was cancelled."""
