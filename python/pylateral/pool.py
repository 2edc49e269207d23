"""task_pool(), join() and task_group()."""
import _lateral

from . import config


class TaskPool:
    """The context manager returned by :func:`task_pool`.

    Entering it opens the process's task pool; leaving it waits for every
    task (nested ones included), raises the first task error if there was
    one, and stops the worker threads.
    """

    def __init__(self, max_workers=None, timeout=None, block_when_saturated=None):
        self._enabled = config.enabled()
        self._max_workers = config.resolve_workers(max_workers)
        self._timeout = config.resolve_timeout(timeout)
        self._block = config.resolve_block(block_when_saturated)
        self._core = None

    def __enter__(self):
        current = _lateral.get_current_pool()
        if current is not None and not current.forked:
            raise _lateral.TaskPoolAlreadyAllocated(
                "a task pool is already open in this process; use that one")
        # Eager: an ETL job sized its pool for a burst of work; starting every
        # thread now keeps thread start-up out of the burst.
        self._core = _lateral.Pool(self._max_workers, "pylateral", self._block,
                                   not self._enabled, eager=True)
        _lateral.set_current_pool(self._core)
        return self

    def __exit__(self, exc_type, exc, tb):
        core = self._core
        failed = exc_type is not None
        try:
            if not failed and not core.forked:
                core.join(self._timeout)
        except BaseException:
            failed = True
            raise
        finally:
            try:
                core.close(cancel=failed)
            finally:
                if _lateral.get_current_pool() is core:
                    _lateral.set_current_pool(None)
        return False

    def join(self, timeout=None):
        """Wait for every queued and running task; raise the first error."""
        self._require_open().join(self._timeout if timeout is None else timeout)

    def return_values(self):
        """The values returned by ``has_return_value=True`` tasks, in no
        particular order."""
        return list(self._require_core().results)

    @property
    def results(self):
        """Same values as :meth:`return_values` (the live list)."""
        return self._require_core().results

    @property
    def errors(self):
        """Every exception raised by a task of this pool, first one first."""
        return self._require_core().errors

    @property
    def max_workers(self):
        """The number of worker threads (argument, else environment, else default)."""
        return self._max_workers

    @property
    def timeout(self):
        """Seconds the exit (or :meth:`join`) may wait; ``None``: no limit."""
        return self._timeout

    @property
    def block_when_saturated(self):
        """Whether a task call of the opening thread waits for a free worker."""
        return self._block

    @property
    def enabled(self):
        """False when ``PYLATERAL_ENABLED=false`` made every task run inline."""
        return self._enabled

    def _require_core(self):
        if self._core is None:
            raise RuntimeError("the task pool has not been entered")
        return self._core

    def _require_open(self):
        core = self._require_core()
        if core.closed:
            raise RuntimeError("the task pool is closed")
        return core


def task_pool(max_workers=None, timeout=None, block_when_saturated=None):
    """Open the process's task pool: ``with pylateral.task_pool() as pool:``.

    ``max_workers``: threads, else ``$PYLATERAL_WORKERS``, else 5 x CPUs.
    ``timeout``: seconds that the exit (or :func:`join`) may wait, else
    ``$PYLATERAL_TIMEOUT``; then :class:`PoolTimeoutError` is raised, and as
    with any exception leaving the block, queued tasks are dropped and
    running ones interrupted.
    ``block_when_saturated`` (else ``$PYLATERAL_BLOCK_WHEN_SATURATED``, else
    False): a task call of the opening thread that makes every worker busy
    returns only once a worker is free (workers never block).
    """
    return TaskPool(max_workers, timeout, block_when_saturated)


def get_current_task_pool():
    """The open pool's core (a ``_lateral.Pool``), or ``None``."""
    return _lateral.get_current_pool()


def join(timeout=None):
    """Block until every task of the open pool is done; re-raise the first
    task error.  Does nothing when no pool is open."""
    timeout = _lateral.check_timeout(timeout)  # a bad timeout is a bug with or without a pool
    core = _lateral.get_current_pool()
    if core is not None and not core.inline:
        core.join(timeout)


def task_group():
    """``with pylateral.task_group() as group:`` waits on exit for the tasks
    started inside it (and the tasks they start) and gathers the return
    values of ``has_return_value=True`` tasks in ``group.results``."""
    return _lateral.TaskGroup()
