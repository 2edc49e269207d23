"""map, par, async_map, async_par and the thread/process namespaces."""
import concurrent.futures
import concurrent.futures.thread  # noqa: F401 -- its exit hook must be older than ours
import itertools
import time
import weakref
from collections.abc import Callable, Generator, Iterable, Sequence
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar, cast, overload

import _lateral
import _lateral_exit
import _lateral_progress
from _lateral_progress import ProgressOption

from . import _aio, _chunks, _futures, _params, _processes, _threads
from ._params import PROCESS_EXECUTOR, THREAD_EXECUTOR, ExecutorArg, Work
from .exceptions import TimeoutException
from .models import DictResult, FailedTask, ListResult, ParallelJob
from .utils import split_collection

log = _lateral_progress.package_logger("parallel")

_T = TypeVar("_T")
_K = TypeVar("_K")
_U = TypeVar("_U")
#: What an execution's results() gives: a ListResult or a DictResult.
_R = TypeVar("_R", bound="ListResult[Any] | DictResult[Any, Any]")
#: A run of calls: on lateral's threads, or on a concurrent.futures executor.
_Run = _threads.ThreadRun | _futures.FutureRun


class AsyncExecution(Generic[_R]):
    """Calls started by :func:`async_map` or :func:`async_par`.

    ``results(timeout=None)`` blocks for the results; as a context manager,
    leaving the ``with`` block shuts the execution down: it waits for the
    calls (at most until the call's own ``timeout`` deadline) on a clean exit,
    and cancels the calls not yet started when the block raised.  Dropped
    unread, it still runs its calls to the end.

    ``await execution`` (asyncio, trio, anyio) gives what :meth:`results`
    gives, or raises what it raises, without blocking the event loop;
    cancelling the awaiting task cancels the execution (see :meth:`cancel`).

    For type checkers an ``AsyncExecution[R]``: ``R`` is what :meth:`results`
    gives, a ``ListResult[T]`` or a ``DictResult[K, T]``.
    """

    def __init__(self, work: Work, run: _Run, silent: bool, timeout: float | None,
                 deadline: float | None,
                 monitor: _lateral_progress.Monitor | None = None) -> None:
        self._work = work
        self._run = run
        self._silent = silent
        self._timeout = timeout
        self._deadline = deadline
        self._monitor = monitor
        self._cancelled = False
        self._result: _R | None = None
        self._error: BaseException | None = None
        # Dropped unread, a process run gives its pool back: its finalizer
        # leaves run.release to the next call (see _processes.release_later).
        # A thread run needs none (its pool comes back once the batch ends,
        # see _threads): a finalizer runs wherever the garbage collector
        # does, even in code holding the lock release() takes, and a Ctrl-C
        # landing in it would be lost.
        self._finalizer: weakref.finalize[[Callable[[], None]], AsyncExecution[_R]] | None = None
        if run.release_when_dropped:
            self._finalizer = weakref.finalize(self, _processes.release_later, run.release)
            self._finalizer.atexit = False
        _unfinished.add(run.pending_work)

    def results(self, timeout: float | None = None) -> _R:
        """The results (a list or a dict, see :class:`BaseResult`).

        Waits at most ``timeout`` seconds (then :class:`TimeoutException`,
        nothing cancelled: ask again), and never past the deadline set by the
        ``timeout=`` given when the calls started: when that one passes, the
        calls not started are cancelled and :class:`TimeoutException` is
        raised.  Without ``silent``, the first exception (in input order) of
        the calls is raised.
        """
        if self._result is not None:
            return self._result
        if self._error is not None:
            raise self._error
        timeout = _lateral.check_timeout(timeout)
        wait_for, is_deadline = self._budget(timeout)
        if not self._run.wait(wait_for):
            if is_deadline:
                return self._past_deadline()
            raise TimeoutException(
                f"{self._work.name}: not every call finished within "
                f"{timeout:g} seconds ({self._late_calls()} still running or waiting)")
        if self._cancelled:
            raise concurrent.futures.CancelledError(f"{self._work.name} was cancelled")
        try:
            results, errors = self._run.outcome()
        except BaseException as fatal:
            # A broken process pool: let it go now, so that the next call
            # starts a new one even while this execution is still referenced.
            self._error = fatal
            self._release()
            raise
        if errors and not self._silent:
            # The rest of the work no longer matters: stop what can be stopped.
            first = min(errors)
            self._error = errors[first]
            _log_halt(self._work, first, self._error)
            # On 3.10 onto __notes__ only: the exception's args and message
            # stay what the call raised, as with the published library.
            _lateral.add_note(self._error, self._work.failure_note(first))
            self._abandon()
            raise self._error
        self._release()
        result = self._result = cast(_R, self._build(results, errors))
        return result

    def done(self) -> bool:
        """True when no call is left to run or running."""
        return self._run.wait(0)

    def __await__(self) -> Generator[Any, None, _R]:
        """``await execution``: :meth:`results` without blocking the event
        loop (asyncio, trio or anyio); cancelling the awaiting task cancels
        the execution (see :meth:`cancel`).  docs/async.md."""
        return self._results_async().__await__()

    async def _results_async(self) -> _R:
        # The run wakes the event loop when it ends; until then the loop
        # runs other tasks.  results() then finds the calls done (or the
        # deadline passed) and does not block.
        if self._result is None and self._error is None and not self.done():
            await _aio.wait_done(self._run.add_done_callback, self.cancel, self._deadline)
        return self.results(timeout=0)

    def cancel(self) -> None:
        """Cancel the calls not yet started; running calls finish on threads,
        and are stopped on parallel's own process pool.  :meth:`results`
        then raises ``CancelledError``."""
        if not self.done():
            self._abandon()

    def shutdown(self, wait: bool = True, cancel: bool = False) -> None:
        """Like ``Executor.shutdown``: optionally cancel (see :meth:`cancel`),
        optionally wait for the calls (never past the deadline of the call's
        ``timeout=``), and release the threads or processes."""
        if cancel:
            self.cancel()
        if wait:
            wait_for, is_deadline = self._budget(None)
            if not self._run.wait(wait_for) and is_deadline:
                self._abandon()
        self._release()

    def start(self) -> "AsyncExecution[_R]":
        """Does nothing: the calls started when the execution was made.  The
        published python-parallel started them here; code that calls
        ``start()`` keeps working."""
        return self

    def __enter__(self) -> "AsyncExecution[_R]":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        self.shutdown(wait=exc_type is None, cancel=exc_type is not None)
        return False

    def _late_calls(self) -> str:
        """The calls not finished yet, named for an error message."""
        return self._work.late_calls(self._run.timed_out_outcome()[2])

    def _past_deadline(self) -> _R:
        """The call's ``timeout=`` deadline passed: cancel the calls not
        started, then raise :class:`TimeoutException` naming the late calls,
        or, in silent mode, return the finished results with a
        :class:`FailedTask` holding a TimeoutException for each late call."""
        try:
            results, errors, late = self._run.timed_out_outcome()
        except BaseException as fatal:  # a broken process pool
            self._error = fatal
            raise
        finally:
            # Only now: on parallel's own process pool, abandoning
            # terminates the workers, failing the calls still pending.
            self._abandon()
        within = f"within the timeout of {self._timeout:g} seconds"
        if not self._silent:
            self._error = TimeoutException(
                f"{self._work.name}: not every call finished {within} (late: "
                f"{self._work.late_calls(late)}); the calls not started were cancelled")
            raise self._error
        timed_out = TimeoutException(f"{self._work.name}: this call did not finish {within}")
        failures = {**errors, **dict.fromkeys(late, timed_out)}
        result = self._result = cast(_R, self._build(results, failures))
        return result

    def _budget(self, timeout: float | None) -> tuple[float | None, bool]:
        """(seconds to wait, whether that wait ends at the call's deadline)."""
        if self._deadline is None:
            return timeout, False
        left = max(0.0, self._deadline - time.monotonic())
        if timeout is None or left <= timeout:
            return left, True
        return timeout, False

    def _abandon(self) -> None:
        """Cancel what has not started and let go of what still runs (the
        interpreter's exit does not wait for it)."""
        _unfinished.discard(self._run.pending_work)
        self._cancelled = True
        self._run.cancel()
        self._release(abandoned=True)

    def _release(self, abandoned: bool = False) -> None:
        # The run's release() does its work once; then the finalizer has
        # nothing left to do (interrupted in between, it runs it again).
        self._run.release(abandoned=abandoned)
        if self._finalizer is not None:
            self._finalizer.detach()
        monitor, self._monitor = self._monitor, None
        if monitor is not None:  # a progress callback's error, if the calls had none
            monitor.finish(raise_error=not abandoned and self._error is None)

    def _build(self, results: list[Any], errors: dict[int, BaseException],
               ) -> ListResult[Any] | DictResult[Any, Any]:
        work = self._work
        if not errors:
            if work.keys is None:
                return results if type(results) is ListResult else ListResult(results)
            return DictResult(zip(work.keys, results))
        values = list(results)
        failed = sorted(errors)
        for index in failed:
            args, kwargs = work.call_args(index)
            fn: Callable[..., Any] = work.fn if work.fn is not None else work.items[index][0]
            name = None if work.keys is None else work.keys[index]
            values[index] = FailedTask(ParallelJob(fn, name, args, kwargs), errors[index])
        if work.keys is None:
            return ListResult(values, failed)
        keys = work.keys
        return DictResult(zip(keys, values), [keys[i] for i in failed])


def _log_halt(work: Work, index: int, error: BaseException) -> None:
    log.warning("%s stopped on an error: %s raised %s; the calls not started "
                "were cancelled", work.name, work.position(index),
                _lateral_progress.error_text(error))


def _start_progress(option: ProgressOption, work: Work,
                    run: _Run) -> _lateral_progress.Monitor | None:
    """Report the items finished out of all of them, until the run is done."""
    total = len(work.items)
    monitor = _lateral_progress.start(option, lambda: (run.finished, total), work.name, log)
    if monitor is not None:
        run.add_done_callback(monitor.stop_soon)
    return monitor


def start(work: Work, executor: object, max_workers: int | None, timeout: float | None,
          silent: bool, progress: object = None) -> AsyncExecution[Any]:
    """Validate the options, start ``work`` and return its AsyncExecution.

    A signal handler raising before the AsyncExecution exists leaves a run
    nobody holds: its calls still run to the end, then its thread pool comes
    back to the cache (see _threads); a process pool stays counted as used,
    so that it is shut down at exit rather than when evicted."""
    executor = _params.check_executor(executor)
    max_workers = _params.check_max_workers(max_workers)
    timeout = _lateral.check_timeout(timeout)
    silent = bool(silent)
    checked = _lateral_progress.check(progress, work.name)
    deadline = None if timeout is None else time.monotonic() + timeout
    run: _Run
    if not work.items:
        run = _futures.FutureRun(None, [], 0, None, None, True)
    elif executor == THREAD_EXECUTOR:
        run = _threads.ThreadRun(work, max_workers, silent)
    elif executor == PROCESS_EXECUTOR:
        run = _chunks.start_process(work, None, max_workers, silent)
    elif isinstance(executor, concurrent.futures.ProcessPoolExecutor):
        run = _chunks.start_process(work, executor, max_workers, silent)
    else:
        run = _futures.start_generic(work, executor, max_workers, silent)
    monitor = _start_progress(checked, work, run)
    return AsyncExecution(work, run, silent, timeout, deadline, monitor)


def run_blocking(work: Work, executor: object, max_workers: int | None,
                 timeout: float | None, silent: bool, progress: object = None) -> Any:
    execution = start(work, executor, max_workers, timeout, silent, progress)
    try:
        return execution.results()
    except BaseException:
        execution.shutdown(wait=False, cancel=True)
        raise


# The results mirror the parameters: a dict gives a DictResult by the same
# keys, any other iterable a ListResult (see _params.read_params).
@overload
def map(  # type: ignore[overload-overlap]  # a dict is iterable too
        fn: Callable[..., _T], params: dict[_K, Any], *,
        extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
        executor: ExecutorArg = ..., max_workers: int | None = ...,
        timeout: float | None = ..., silent: bool = ...,
        progress: ProgressOption = ...,
        ) -> DictResult[_K, _T]:
    ...


@overload
def map(
        fn: Callable[..., _T], params: Iterable[Any], *,
        extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
        executor: ExecutorArg = ..., max_workers: int | None = ...,
        timeout: float | None = ..., silent: bool = ...,
        progress: ProgressOption = ...,
        ) -> ListResult[_T]:
    ...


def map(fn: Callable[..., Any], params: Iterable[Any], *,
        extras: dict[str, Any] | None = None, unpack_arguments: bool = True,
        executor: ExecutorArg = THREAD_EXECUTOR, max_workers: int | None = None,
        timeout: float | None = None, silent: bool = False,
        progress: ProgressOption = None) -> Any:
    """Call ``fn`` once per parameter, in parallel; return the results.

    ``params``: a sequence (results come back as a list, in input order) or
    a dict (results by the same keys).  Each parameter is one call: a tuple
    is the positional arguments (a trailing dict in it the keyword
    arguments), a dict is keyword arguments only, ``parallel.arg(...)`` is
    explicit, anything else is the single argument (with
    ``unpack_arguments=False`` every parameter is the single argument).
    ``extras``: keyword arguments added to every call.
    ``executor``: ``'thread'`` (default), ``'process'`` or any
    ``concurrent.futures.Executor``.  ``max_workers``: threads or processes
    (for an Executor instance: calls in flight at once).  ``timeout``:
    seconds for all the results, else :class:`TimeoutException` and the
    calls not started are cancelled.  ``silent``: failed calls give a
    :class:`FailedTask` in their place instead of raising.
    ``progress``: ``True`` draws the calls finished out of all of them on
    stderr when it is a terminal, ``"always"`` even when not, ``"lines"`` as
    plain lines for logs; a callable is called as ``progress(done, total)``
    from a background thread (see docs/parallel.md); ``None``/``False``:
    nothing.
    """
    work = _params.map_work(fn, params, extras, unpack_arguments, "parallel.map")
    return run_blocking(work, executor, max_workers, timeout, silent, progress)


@overload
def par(  # type: ignore[overload-overlap]  # a dict is iterable too
        params: dict[_K, Any], *,
        extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
        executor: ExecutorArg = ..., max_workers: int | None = ...,
        timeout: float | None = ..., silent: bool = ...,
        progress: ProgressOption = ...,
        ) -> DictResult[_K, Any]:
    ...


@overload
def par(
        params: Iterable[Any], *,
        extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
        executor: ExecutorArg = ..., max_workers: int | None = ...,
        timeout: float | None = ..., silent: bool = ...,
        progress: ProgressOption = ...,
        ) -> ListResult[Any]:
    ...


def par(params: Iterable[Any], *,
        extras: dict[str, Any] | None = None, unpack_arguments: bool = True,
        executor: ExecutorArg = THREAD_EXECUTOR, max_workers: int | None = None,
        timeout: float | None = None, silent: bool = False,
        progress: ProgressOption = None) -> Any:
    """Run different calls in parallel; return their results.

    ``params``: a sequence or a dict of calls, each ``parallel.future(fn,
    *args, **kwargs)``, ``decorated_fn.future(...)``, a tuple ``(fn, arg1,
    ..., {'kw': value})`` or a bare callable.  With ``unpack_arguments=False``
    a tuple's arguments are all positional (a trailing dict too).  Options as
    for :func:`map`.
    """
    work = _params.par_work(params, extras, unpack_arguments, "parallel.par")
    return run_blocking(work, executor, max_workers, timeout, silent, progress)


@overload
def async_map(  # type: ignore[overload-overlap]  # a dict is iterable too
        fn: Callable[..., _T], params: dict[_K, Any], *,
        extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
        executor: ExecutorArg = ..., max_workers: int | None = ...,
        timeout: float | None = ..., silent: bool = ...,
        progress: ProgressOption = ...,
        ) -> AsyncExecution[DictResult[_K, _T]]:
    ...


@overload
def async_map(
        fn: Callable[..., _T], params: Iterable[Any], *,
        extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
        executor: ExecutorArg = ..., max_workers: int | None = ...,
        timeout: float | None = ..., silent: bool = ...,
        progress: ProgressOption = ...,
        ) -> AsyncExecution[ListResult[_T]]:
    ...


def async_map(fn: Callable[..., Any], params: Iterable[Any], *,
              extras: dict[str, Any] | None = None, unpack_arguments: bool = True,
              executor: ExecutorArg = THREAD_EXECUTOR, max_workers: int | None = None,
              timeout: float | None = None, silent: bool = False,
              progress: ProgressOption = None) -> AsyncExecution[Any]:
    """Start :func:`map`'s calls and return at once an
    :class:`AsyncExecution`: ``with parallel.async_map(...) as ex:
    results = ex.results()``.  ``progress`` is shown until the calls end
    (the last count before ``results()`` or ``await`` returns)."""
    work = _params.map_work(fn, params, extras, unpack_arguments, "parallel.async_map")
    return start(work, executor, max_workers, timeout, silent, progress)


@overload
def async_par(  # type: ignore[overload-overlap]  # a dict is iterable too
        params: dict[_K, Any], *,
        extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
        executor: ExecutorArg = ..., max_workers: int | None = ...,
        timeout: float | None = ..., silent: bool = ...,
        progress: ProgressOption = ...,
        ) -> AsyncExecution[DictResult[_K, Any]]:
    ...


@overload
def async_par(
        params: Iterable[Any], *,
        extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
        executor: ExecutorArg = ..., max_workers: int | None = ...,
        timeout: float | None = ..., silent: bool = ...,
        progress: ProgressOption = ...,
        ) -> AsyncExecution[ListResult[Any]]:
    ...


def async_par(params: Iterable[Any], *,
              extras: dict[str, Any] | None = None, unpack_arguments: bool = True,
              executor: ExecutorArg = THREAD_EXECUTOR, max_workers: int | None = None,
              timeout: float | None = None, silent: bool = False,
              progress: ProgressOption = None) -> AsyncExecution[Any]:
    """Start :func:`par`'s calls and return at once an :class:`AsyncExecution`
    (``progress`` as for :func:`async_map`)."""
    work = _params.par_work(params, extras, unpack_arguments, "parallel.async_par")
    return start(work, executor, max_workers, timeout, silent, progress)


def split(collection: Sequence[_T], fn: Callable[..., Iterable[_U]],
          executor: ExecutorArg = THREAD_EXECUTOR, workers: int | None = None,
          timeout: float | None = None, extras: dict[str, Any] | None = None) -> list[_U]:
    """Cut ``collection`` (a list, tuple or other sequence) into ``workers``
    consecutive chunks (default ``min(32, CPUs + 4)``), call ``fn(chunk,
    **extras)`` on each in parallel, and return the concatenation of the
    lists they return, in order.  ``executor`` and ``timeout`` as for
    :func:`map`; ``workers`` is also the number of threads or processes.
    """
    workers = _params.default_thread_workers() if workers is None else \
        _lateral.check_workers(workers, "workers")
    chunks = list(split_collection(collection, workers))
    work = _params.map_work(fn, chunks, extras, False, "parallel.split")
    results = run_blocking(work, executor, workers, timeout, False)
    try:
        return list(itertools.chain.from_iterable(results))
    except TypeError:
        raise TypeError(f"parallel.split: {fn!r} must return a list (or another iterable) "
                        "for each chunk") from None


class ExecutorNamespace:
    """``parallel.thread`` and ``parallel.process``: map, par, async_map and
    async_par with the executor chosen."""

    def __init__(self, executor: ExecutorArg) -> None:
        self.executor = _params.check_executor(executor)

    @overload
    def map(  # type: ignore[overload-overlap]  # a dict is iterable too
            self, fn: Callable[..., _T], params: dict[_K, Any], *,
            extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
            max_workers: int | None = ..., timeout: float | None = ..., silent: bool = ...,
            progress: ProgressOption = ...,
            ) -> DictResult[_K, _T]:
        ...

    @overload
    def map(
            self, fn: Callable[..., _T], params: Iterable[Any], *,
            extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
            max_workers: int | None = ..., timeout: float | None = ..., silent: bool = ...,
            progress: ProgressOption = ...,
            ) -> ListResult[_T]:
        ...

    def map(self, fn: Callable[..., Any], params: Iterable[Any], *,
            extras: dict[str, Any] | None = None, unpack_arguments: bool = True,
            max_workers: int | None = None, timeout: float | None = None,
            silent: bool = False, progress: ProgressOption = None) -> Any:
        """:func:`parallel.map` on this executor."""
        return map(fn, params, extras=extras, unpack_arguments=unpack_arguments,
                   executor=self.executor, max_workers=max_workers, timeout=timeout,
                   silent=silent, progress=progress)

    @overload
    def par(  # type: ignore[overload-overlap]  # a dict is iterable too
            self, params: dict[_K, Any], *,
            extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
            max_workers: int | None = ..., timeout: float | None = ..., silent: bool = ...,
            progress: ProgressOption = ...,
            ) -> DictResult[_K, Any]:
        ...

    @overload
    def par(
            self, params: Iterable[Any], *,
            extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
            max_workers: int | None = ..., timeout: float | None = ..., silent: bool = ...,
            progress: ProgressOption = ...,
            ) -> ListResult[Any]:
        ...

    def par(self, params: Iterable[Any], *, extras: dict[str, Any] | None = None,
            unpack_arguments: bool = True, max_workers: int | None = None,
            timeout: float | None = None, silent: bool = False,
            progress: ProgressOption = None) -> Any:
        """:func:`parallel.par` on this executor."""
        return par(params, extras=extras, unpack_arguments=unpack_arguments,
                   executor=self.executor, max_workers=max_workers, timeout=timeout,
                   silent=silent, progress=progress)

    @overload
    def async_map(  # type: ignore[overload-overlap]  # a dict is iterable too
            self, fn: Callable[..., _T], params: dict[_K, Any], *,
            extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
            max_workers: int | None = ..., timeout: float | None = ..., silent: bool = ...,
            progress: ProgressOption = ...,
            ) -> AsyncExecution[DictResult[_K, _T]]:
        ...

    @overload
    def async_map(
            self, fn: Callable[..., _T], params: Iterable[Any], *,
            extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
            max_workers: int | None = ..., timeout: float | None = ..., silent: bool = ...,
            progress: ProgressOption = ...,
            ) -> AsyncExecution[ListResult[_T]]:
        ...

    def async_map(self, fn: Callable[..., Any], params: Iterable[Any], *,
                  extras: dict[str, Any] | None = None, unpack_arguments: bool = True,
                  max_workers: int | None = None, timeout: float | None = None,
                  silent: bool = False, progress: ProgressOption = None) -> AsyncExecution[Any]:
        """:func:`parallel.async_map` on this executor."""
        return async_map(fn, params, extras=extras, unpack_arguments=unpack_arguments,
                         executor=self.executor, max_workers=max_workers,
                         timeout=timeout, silent=silent, progress=progress)

    @overload
    def async_par(  # type: ignore[overload-overlap]  # a dict is iterable too
            self, params: dict[_K, Any], *,
            extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
            max_workers: int | None = ..., timeout: float | None = ..., silent: bool = ...,
            progress: ProgressOption = ...,
            ) -> AsyncExecution[DictResult[_K, Any]]:
        ...

    @overload
    def async_par(
            self, params: Iterable[Any], *,
            extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
            max_workers: int | None = ..., timeout: float | None = ..., silent: bool = ...,
            progress: ProgressOption = ...,
            ) -> AsyncExecution[ListResult[Any]]:
        ...

    def async_par(self, params: Iterable[Any], *, extras: dict[str, Any] | None = None,
                  unpack_arguments: bool = True, max_workers: int | None = None,
                  timeout: float | None = None, silent: bool = False,
                  progress: ProgressOption = None) -> AsyncExecution[Any]:
        """:func:`parallel.async_par` on this executor."""
        return async_par(params, extras=extras, unpack_arguments=unpack_arguments,
                         executor=self.executor, max_workers=max_workers, timeout=timeout,
                         silent=silent, progress=progress)

    def split(self, collection: Sequence[_T], fn: Callable[..., Iterable[_U]],
              workers: int | None = None, timeout: float | None = None,
              extras: dict[str, Any] | None = None) -> list[_U]:
        """:func:`parallel.split` on this executor."""
        return split(collection, fn, executor=self.executor, workers=workers,
                     timeout=timeout, extras=extras)

    def __repr__(self) -> str:
        return f"<parallel.{self.executor} namespace>"


#: ``parallel.thread.map(...)`` and the rest: the entry points on threads.
thread = ExecutorNamespace(THREAD_EXECUTOR)
#: ``parallel.process.map(...)`` and the rest: the entry points on processes.
process = ExecutorNamespace(PROCESS_EXECUTOR)


def shutdown() -> None:
    """Close parallel's cached thread pools and process pools (waiting for
    their work).  The next call opens new ones; calling this is never
    required (they are closed at exit) but frees their threads and
    processes.  A process pool that a call still uses (one running in
    another thread, or an async call not read yet) closes when that call
    is done."""
    _threads.shutdown()
    _processes.shutdown()


#: What the calls started and not abandoned still have to finish: thread
#: batches and FutureRuns (until done and unreferenced).
_unfinished: _lateral_exit.Unfinished[_lateral.Batch | _futures.FutureRun] = \
    _lateral_exit.Unfinished()


def _wait_for(work: _lateral.Batch | _futures.FutureRun) -> None:
    if isinstance(work, _futures.FutureRun):
        work.wait_done()  # results nobody reads need no decoding
    else:
        work.wait(None)


# Calls started and not abandoned -- async_map / async_par results never
# read, executions dropped or shut down with wait=False -- finish before the
# interpreter exits.  threading's exit hooks run last registered first: ours
# before those of concurrent.futures (imported above), whose executors our
# calls may still submit to.
_lateral_exit.wait_at_exit(_unfinished, _wait_for)
