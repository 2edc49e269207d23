"""ThreadExecutor and ProcessExecutor: the published python-parallel's
executors of a list of :class:`ParallelJob`, on lateral's machinery (the
same runs as :func:`parallel.async_par`)."""
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Literal

import _lateral

from . import _params, api
from ._params import PROCESS_EXECUTOR, THREAD_EXECUTOR
from .exceptions import ParallelStatusException, TimeoutException
from .models import DictResult, ListResult, ParallelStatus


class BaseParallelExecutor:
    """Runs ``jobs`` (:class:`ParallelJob`, or any :func:`parallel.par`
    entry) on this class's executor: nothing runs before :meth:`start` (or
    entering a ``with`` block), :meth:`results` waits for the results,
    :meth:`shutdown` (or leaving the block) lets the workers go.

    ``ResultClass``: ``ListResult`` (alias ``SequentialMapResult``, results
    in job order) or ``DictResult`` (``NamedMapResult``, by job name), or a
    subclass of either.  ``status``: one of :class:`ParallelStatus`.
    """

    executor: _params.ExecutorArg | None = None

    def __init__(self, jobs: Iterable[Any], max_workers: int | None = None,
                 timeout: float | None = None, silent: bool = False,
                 ResultClass: type[ListResult[Any]] | type[DictResult[Any, Any]] = ListResult,
                 ) -> None:
        if not (isinstance(ResultClass, type) and issubclass(ResultClass, (ListResult, DictResult))):
            raise TypeError(f"ResultClass must be ListResult or DictResult (or a subclass), "
                            f"got {ResultClass!r}")
        jobs = list(jobs)
        self._work = _params.par_work(jobs, None, True, type(self).__name__)
        if issubclass(ResultClass, DictResult):
            self._work.keys = [getattr(job, "name", None) for job in jobs]
        self.jobs = jobs
        self.max_workers = _params.check_max_workers(max_workers)
        self.timeout = _lateral.check_timeout(timeout)
        self.silent = bool(silent)
        self.ResultClass = ResultClass
        self._status = ParallelStatus.NOT_STARTED
        self._execution: api.AsyncExecution[Any] | None = None
        self._results: ListResult[Any] | DictResult[Any, Any] | None = None

    @property
    def status(self) -> ParallelStatus:
        """``NOT_STARTED``, ``STARTED``, ``DONE`` or ``FAILED`` (a job raised)."""
        return self._status

    def start(self) -> "BaseParallelExecutor":
        """Start every job; ParallelStatusException if already started."""
        if self._status is ParallelStatus.STARTED:
            raise ParallelStatusException("the executor is already running its jobs")
        self._results = None
        self._execution = api.start(self._work, self.executor, self.max_workers,
                                    self.timeout, self.silent)
        self._status = ParallelStatus.STARTED
        return self

    def results(self, timeout: float | None = None) -> ListResult[Any] | DictResult[Any, Any]:
        """The results (a ``ResultClass``), as :meth:`AsyncExecution.results`;
        ParallelStatusException before :meth:`start`."""
        if self._status is ParallelStatus.NOT_STARTED:
            raise ParallelStatusException("the executor has not been started: call start()")
        if self._results is not None:
            return self._results
        execution = self._execution
        assert execution is not None  # started
        try:
            results = execution.results(timeout)
        except TimeoutException:
            raise
        except Exception:
            self._status = ParallelStatus.FAILED
            raise
        self._status = ParallelStatus.DONE
        if type(results) is not self.ResultClass:
            results = self.ResultClass(results, results._failed_keys)
        self._results = results
        return results

    def shutdown(self) -> None:
        """Wait for the jobs (within ``timeout``) and let the workers go."""
        if self._execution is not None:
            self._execution.shutdown()

    def __enter__(self) -> "BaseParallelExecutor":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        if self._execution is not None:
            self._execution.__exit__(exc_type, exc, tb)
        return False


class ThreadExecutor(BaseParallelExecutor):
    """:class:`BaseParallelExecutor` on threads."""

    executor = THREAD_EXECUTOR


class ProcessExecutor(BaseParallelExecutor):
    """:class:`BaseParallelExecutor` on processes (jobs must pickle)."""

    executor = PROCESS_EXECUTOR


__all__ = ["BaseParallelExecutor", "ProcessExecutor", "ThreadExecutor"]
