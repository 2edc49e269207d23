"""task_pool(), join() and task_group()."""
import weakref
from types import TracebackType
from typing import Any, Literal

import _lateral
import _lateral_progress

from . import config
from .exceptions import TaskErrors

log = _lateral_progress.package_logger("pylateral")

#: The TaskPool whose pool is current (a weak reference), so that the next
#: task_pool() can tell a pool in use from one whose ``with`` block is gone.
_owner: "weakref.ref[TaskPool] | None" = None


class TaskPool:
    """The context manager returned by :func:`task_pool`.

    Entering it opens the process's task pool; leaving it waits for every
    task (nested ones included), raises the first task error if there was
    one (with ``halt_on_error=False``: :class:`TaskErrors` holding them
    all), and stops the worker threads.  Its progress, if asked for (see
    :func:`task_pool`), is shown from entering until leaving.

    Wherever a signal handler raises (Ctrl-C) in ``__enter__`` or
    ``__exit__``, they close the pool and unregister it before the exception
    goes on.  Only a signal landing as ``__exit__`` starts, before any of
    its code, or a second one interrupting that cleanup, can leave the pool
    registered: the next ``task_pool()`` closes it then (see
    :func:`_close_abandoned_pool`).
    """

    def __init__(self, max_workers: int | None = None, timeout: float | None = None,
                 block_when_saturated: bool | None = None,
                 progress: _lateral_progress.ProgressOption = None,
                 halt_on_error: bool = True) -> None:
        self._enabled = config.enabled()
        self._max_workers = config.resolve_workers(max_workers)
        self._timeout = config.resolve_timeout(timeout)
        self._block = config.resolve_block(block_when_saturated)
        self._progress = _lateral_progress.check(progress, "task_pool")
        self._halt_on_error = config.check_bool(halt_on_error, "halt_on_error")
        self._monitor: _lateral_progress.Monitor | None = None
        self._reporting = False  # the open pool's end is still to be reported
        self._core: _lateral.Pool | None = None

    def __enter__(self) -> "TaskPool":
        global _owner
        _close_abandoned_pool()
        self._core = None
        try:
            # Threads start on demand (a task queued while no worker is
            # idle starts one, up to max_workers), as ThreadPoolExecutor's
            # do: a pool that runs a few tasks starts a few threads.
            self._core = _lateral.Pool(self._max_workers, "pylateral", self._block,
                                       not self._enabled,
                                       halt_on_error=self._halt_on_error)
            _owner = weakref.ref(self)
            _lateral.set_current_pool(self._core)
            if self._enabled:
                log.debug("task pool opened: up to %d worker threads", self._max_workers)
            else:
                log.debug("task pool opened, disabled: tasks run inline")
            self._reporting = True
            self._monitor = _start_progress(self._progress, self._core)
            return self
        except BaseException as exc:
            # A signal handler raised (Ctrl-C) before the block began, so no
            # __exit__ will run: undo the opening here.  (Raised as the
            # constructor returns, it loses the pool: the core closes a pool
            # that nothing refers to.)
            if self._core is not None:
                self._close(cancel=True, leaving=exc)
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        try:
            core = self._require_core()
            if exc_type is None and not core.forked:
                core.finish(self._timeout)
            self._close(cancel=exc_type is not None, leaving=exc)
        except BaseException as error:
            # join() raised (a task's error, a timeout, Ctrl-C), or a signal
            # handler did before close() began.
            self._close(cancel=True, leaving=error)
            raise
        if exc_type is None:
            self._raise_collected_errors()
        return False

    def _raise_collected_errors(self) -> None:
        """halt_on_error=False: the block and every task ran; raise one
        TaskErrors for the tasks that failed."""
        core = self._require_core()
        # Only Exceptions: any other BaseException halted the pool, and was raised.
        errors = [error for error in core.errors if isinstance(error, Exception)]
        if self._halt_on_error or core.forked or not errors:
            return
        raise TaskErrors(f"{len(errors)} of {core.finished} tasks failed", errors)

    def _close(self, cancel: bool, leaving: BaseException | None) -> None:
        """Stop the pool and stop it being current.  ``leaving``: the
        exception already on its way out of the block, or None.

        close() comes first: it marks the pool closed before it waits, and
        a closed pool no longer counts as the open one."""
        core = self._require_core()
        try:
            try:
                core.close(cancel=cancel)
            finally:
                if not core.closed:
                    # A signal handler raised before close() could begin:
                    # begin it now, dropping the tasks, as for any exception.
                    core.close(cancel=True)
        except KeyboardInterrupt:
            if not isinstance(leaving, KeyboardInterrupt):
                raise
            # Ctrl-C again while the block already leaves on one (a single
            # keypress can arrive twice: from the terminal and from a wrapper
            # that forwards it): stop waiting -- the workers end by
            # themselves, the pool being closed -- and report the first
            # KeyboardInterrupt alone, not a second one chained to it.
        finally:
            if _lateral.get_current_pool() is core:
                _lateral.set_current_pool(None)
            self._closed(leaving)

    def _closed(self, leaving: BaseException | None) -> None:
        """Report the pool's end: a halt on a task's error, the log, the
        last progress (a progress callback's error is raised on a clean exit)."""
        if not self._reporting:
            return
        self._reporting = False
        core = self._require_core()
        if leaving is not None and any(error is leaving for error in core.errors[:1]):
            log.warning("task pool halted on a task's error: %s (task errors: %d)",
                        _lateral_progress.error_text(leaving), len(core.errors))
        monitor, self._monitor = self._monitor, None
        try:
            if monitor is not None:
                monitor.finish(raise_error=leaving is None)
        finally:
            log.debug("task pool closed: %d tasks run or dropped", core.finished)

    def join(self, timeout: float | None = None) -> None:
        """Wait for every queued and running task; raise the first error
        (with ``halt_on_error=False`` task errors are not raised here: they
        are on :attr:`errors`, and in :class:`TaskErrors` at exit)."""
        self._require_open().join(self._timeout if timeout is None else timeout)

    def return_values(self) -> list[Any]:
        """The values returned by ``has_return_value=True`` tasks, in no
        particular order."""
        return list(self._require_core().results)

    @property
    def results(self) -> list[Any]:
        """Same values as :meth:`return_values` (the live list)."""
        return self._require_core().results

    @property
    def errors(self) -> list[BaseException]:
        """Every exception raised by a task of this pool, in completion order
        (the first one first), each with a note naming the call that queued
        the task: ``task f(...) queued at etl.py:12 in main``."""
        return self._require_core().errors

    @property
    def halt_on_error(self) -> bool:
        """True (the default): the first task error halts the pool.  False:
        every task runs, errors are kept on :attr:`errors` and raised at exit
        as one :class:`TaskErrors`."""
        return self._halt_on_error

    @property
    def max_workers(self) -> int:
        """The number of worker threads (argument, else environment, else default)."""
        return self._max_workers

    @property
    def timeout(self) -> float | None:
        """Seconds the exit (or :meth:`join`) may wait; ``None``: no limit."""
        return self._timeout

    @property
    def block_when_saturated(self) -> bool:
        """Whether a task call of the opening thread waits for a free worker."""
        return self._block

    @property
    def enabled(self) -> bool:
        """False when ``PYLATERAL_ENABLED=false`` made every task run inline."""
        return self._enabled

    def _require_core(self) -> _lateral.Pool:
        if self._core is None:
            raise RuntimeError("the task pool has not been entered")
        return self._core

    def _require_open(self) -> _lateral.Pool:
        core = self._require_core()
        if core.closed:
            raise RuntimeError("the task pool is closed")
        return core


def _start_progress(option: _lateral_progress.ProgressOption,
                    core: _lateral.Pool) -> _lateral_progress.Monitor | None:
    """Report tasks finished out of tasks submitted (a growing total)."""
    counts = lambda: (core.finished, core.submitted)  # noqa: E731
    return _lateral_progress.start(option, counts, "task_pool", log)


def _close_abandoned_pool() -> None:
    """Raise TaskPoolAlreadyAllocated while a ``with task_pool()`` block
    holds the current pool.  A current pool that is closed, or whose
    TaskPool is gone (its ``__enter__`` or ``__exit__`` was interrupted, and
    the cleanup too), is no such pool: close it and unregister it."""
    current = _lateral.get_current_pool()
    if current is None or current.forked:
        return
    owner = _owner() if _owner is not None else None
    if not current.closed and owner is not None and owner._core is current:
        raise _lateral.TaskPoolAlreadyAllocated(
            "a task pool is already open in this process; use that one")
    current.close(cancel=True)
    if _lateral.get_current_pool() is current:
        _lateral.set_current_pool(None)


def task_pool(max_workers: int | None = None, timeout: float | None = None,
              block_when_saturated: bool | None = None,
              progress: _lateral_progress.ProgressOption = None,
              halt_on_error: bool = True) -> TaskPool:
    """Open the process's task pool: ``with pylateral.task_pool() as pool:``.

    ``max_workers``: threads, else ``$PYLATERAL_WORKERS``, else 5 x CPUs.
    ``timeout``: seconds that the exit (or :func:`join`) may wait, else
    ``$PYLATERAL_TIMEOUT``; then :class:`PoolTimeoutError` is raised, and as
    with any exception leaving the block, queued tasks are dropped and
    running ones interrupted.
    ``block_when_saturated`` (else ``$PYLATERAL_BLOCK_WHEN_SATURATED``, else
    False): a task call of the opening thread that makes every worker busy
    returns only once a worker is free (workers never block).
    ``progress``: ``True`` draws tasks finished out of tasks submitted (a
    total that grows as tasks are added) on stderr when it is a terminal,
    ``"always"`` even when not, ``"lines"`` as plain lines for logs, a
    callable is called as ``progress(done, submitted)`` from a background
    thread (see docs/pylateral.md); ``None``/``False``: nothing.
    ``halt_on_error`` (True or False): True, the first task error drops the
    queued tasks, stops the running ones and is raised.  False, for jobs that
    must not stop at one bad record: every task runs; each task's Exception
    is kept on ``pool.errors`` and, when the block ends, one
    :class:`TaskErrors` (an ``ExceptionGroup`` on Python 3.11+) holding them
    all is raised, its message giving the counts.  Ctrl-C, a timeout and a
    task's ``BaseException`` (``SystemExit``...) still halt the pool.
    """
    return TaskPool(max_workers, timeout, block_when_saturated, progress, halt_on_error)


def get_current_task_pool() -> _lateral.Pool | None:
    """The open pool's core (a ``_lateral.Pool``), or ``None``."""
    return _lateral.get_current_pool()


def join(timeout: float | None = None) -> None:
    """Block until every task of the open pool is done; re-raise the first
    task error.  Does nothing when no pool is open."""
    timeout = _lateral.check_timeout(timeout)  # a bad timeout is a bug with or without a pool
    core = _lateral.get_current_pool()
    if core is not None and not core.inline:
        core.join(timeout)


def task_group() -> _lateral.TaskGroup:
    """``with pylateral.task_group() as group:`` waits on exit for the tasks
    started inside it (and the tasks they start) and gathers the return
    values of ``has_return_value=True`` tasks in ``group.results``."""
    return _lateral.TaskGroup()
