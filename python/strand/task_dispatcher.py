"""TaskDispatcher: the published strand's dispatcher of many taskrunners
(``strand.taskrunning.multi_dispatch``).  :func:`strand.dispatch` is
lateral's form of the same idea, with handles."""
from collections.abc import Callable, Iterable
from typing import Any

import _lateral
import _lateral_sync

from ._util import optional_callable
from .constants import THREAD
from .base import Taskrunner
from .decorator import resolve_target

#: A dispatched task's status once it returned / raised.
SUCCESS = "success"
FAILURE = "error"


class TaskDispatcher:
    """Starts taskrunners and collects their outcomes, by dispatch order, in
    three lists: ``results`` (return values), ``status`` (``None`` until the
    task ends, then ``'success'`` or ``'error'``) and ``errors`` (the
    exceptions; ``None`` for the others).

    ``target``: the default taskrunner (``'thread'``, ``'process'``,
    ``'coroutine'``, ``'store'``, ``'sync'`` or a Taskrunner subclass).
    ``check_complete(results, status, errors)``: decides :attr:`complete`
    instead of "every status is set".  Each dispatcher has lists of its own.
    """

    def __init__(self, target: str | type[Taskrunner[Any]] = THREAD,
                 check_complete: Callable[[list[Any], list[str | None], list[Any]], object]
                 | None = None) -> None:
        self._target = resolve_target(target)
        self._check_complete = optional_callable(check_complete, "check_complete")
        # Not a Condition: run() waits in the program's thread, where
        # Ctrl-C lands, and every task's end needs this lock.  Reentrant:
        # check_complete and a runner's constructor may use the dispatcher.
        self._changed = _lateral_sync.Guard(reentrant=True)
        self.reset()

    def reset(self) -> None:
        """Forget every task (tasks still running write to the old lists)."""
        self._changed.call(self._clear)

    def _clear(self) -> None:
        """Contract: _changed held."""
        self.results: list[Any] = []
        self.status: list[str | None] = []
        self.errors: list[Exception | None] = []
        self._queued: list[tuple[Taskrunner[Any], tuple[Any, ...], dict[str, Any]]] = []
        self._dispatched: list[Taskrunner[Any]] = []

    def dispatch(self, func: Callable[..., Any], *init_args: Any,
                 target: str | type[Taskrunner[Any]] | None = None,
                 on_iter: Callable[[Any], object] | None = None,
                 on_end: Callable[[Any], object] | None = None,
                 on_error: Callable[[Exception], object] | None = None,
                 args: Iterable[Any] | None = None, kwargs: dict[str, Any] | None = None,
                 **init_kwargs: Any) -> Any:
        """Start ``func(*init_args, *args, **init_kwargs, **kwargs)`` on a
        runner of ``target`` (default: the dispatcher's) with the callbacks;
        returns what the runner's call returns (a handle for threads and
        processes)."""
        args, kwargs = _args(args), _kwargs(kwargs)
        runner, _ = self._runner(func, init_args, target, on_iter, on_end, on_error, init_kwargs)
        self._dispatched.append(runner)
        return runner(*args, **kwargs)

    def enqueue(self, func: Callable[..., Any], *init_args: Any,
                target: str | type[Taskrunner[Any]] | None = None,
                on_iter: Callable[[Any], object] | None = None,
                on_end: Callable[[Any], object] | None = None,
                on_error: Callable[[Exception], object] | None = None,
                args: Iterable[Any] | None = None, kwargs: dict[str, Any] | None = None,
                **init_kwargs: Any) -> int:
        """Like :meth:`dispatch`, but the task starts at :meth:`run`; returns
        its index in the lists."""
        args, kwargs = _args(args), _kwargs(kwargs)
        runner, index = self._runner(func, init_args, target, on_iter, on_end, on_error,
                                     init_kwargs)
        self._queued.append((runner, args, kwargs))
        return index

    def run(self, timeout: float | None = 10) -> bool:
        """Start the enqueued tasks, in order, and wait until :attr:`complete`;
        True, or TimeoutError after ``timeout`` seconds (None: no limit)."""
        timeout = _lateral.check_timeout(timeout)
        queued, self._queued = self._queued, []
        for runner, args, kwargs in queued:
            self._dispatched.append(runner)
            runner(*args, **kwargs)
        if not self._changed.wait_for(self._is_complete, timeout):
            raise TimeoutError(f"the dispatched tasks did not complete within "
                               f"{timeout:g} seconds")
        return True

    @property
    def complete(self) -> bool:
        """True when every task has ended (or ``check_complete`` says so)."""
        return self._changed.call(self._is_complete)

    def _is_complete(self) -> bool:
        """Contract: _changed held."""
        if self._check_complete is not None:
            return bool(self._check_complete(self.results, self.status, self.errors))
        return all(status is not None for status in self.status)

    def _runner(self, func: Callable[..., Any], init_args: tuple[Any, ...],
                target: str | type[Taskrunner[Any]] | None,
                on_iter: Callable[[Any], object] | None, on_end: Callable[[Any], object] | None,
                on_error: Callable[[Exception], object] | None,
                init_kwargs: dict[str, Any]) -> tuple[Taskrunner[Any], int]:
        on_end = optional_callable(on_end, "on_end")
        on_error = optional_callable(on_error, "on_error")
        runner_class = self._target if target is None else resolve_target(target)
        return self._changed.call(self._new_runner, runner_class, func, init_args, on_iter,
                                  on_end, on_error, init_kwargs)

    def _new_runner(self, runner_class: type[Taskrunner[Any]], func: Callable[..., Any],
                    init_args: tuple[Any, ...], on_iter: Callable[[Any], object] | None,
                    on_end: Callable[[Any], object] | None,
                    on_error: Callable[[Exception], object] | None,
                    init_kwargs: dict[str, Any]) -> tuple[Taskrunner[Any], int]:
        """The runner and its index, taken only if the runner could be made.
        Contract: _changed held."""
        lists, index = (self.results, self.status, self.errors), len(self.status)
        runner = runner_class(func, *init_args, on_iter=on_iter,
                              on_end=self._outcome(lists, index, SUCCESS, on_end),
                              on_error=self._outcome(lists, index, FAILURE, on_error),
                              **init_kwargs)
        for values in lists:
            values.append(None)
        return runner, index

    def _outcome(self, lists: tuple[list[Any], list[str | None], list[Any]], index: int,
                 status: str, callback: Callable[[Any], object] | None,
                 ) -> Callable[[Any], None]:
        """The callback that records a task's end (``status``) at ``index``
        of ``lists``, then calls the user's ``callback``."""
        results, statuses, errors = lists

        def note(value: Any) -> None:
            """Contract: _changed held."""
            (results if status == SUCCESS else errors)[index] = value
            statuses[index] = status
            self._changed.notify_all()

        def record(value: Any) -> None:
            self._changed.call(note, value)
            if callback is not None:
                callback(value)

        return record


def _args(args: Iterable[Any] | None) -> tuple[Any, ...]:
    if args is None:
        return ()
    if isinstance(args, (str, bytes)):
        raise TypeError(f"args must be a list or tuple of arguments, got {args!r}")
    return tuple(args)


def _kwargs(kwargs: dict[str, Any] | None) -> dict[str, Any]:
    if kwargs is None:
        return {}
    if not isinstance(kwargs, dict):
        raise TypeError(f"kwargs must be a dict, got {kwargs!r}")
    return kwargs


__all__ = ["TaskDispatcher"]
