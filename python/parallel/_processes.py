"""parallel's own process pools: standard ``multiprocessing.Pool``s behind
the ``concurrent.futures`` interface, kept open between calls (one per
max_workers, at most KEEP of them) so that a call does not pay for starting
processes.  They use multiprocessing's default start method.

``multiprocessing.Pool`` hands a chunk to a worker with fewer thread hops
than ``ProcessPoolExecutor`` (about 40 us against 150 us here), which lets a
call cut its items into more chunks that overlap with the parent's pickling.
What it lacks is noticing a dead worker: the chunk it ran would never finish.
So each pool has a watcher thread blocked on the worker processes' sentinels;
a worker that dies breaks the pool, failing its pending calls with
``BrokenProcessPool`` as ``ProcessPoolExecutor`` would.

A pool that broke is discarded: the next call starts a new one.  So is a
pool left running the chunks of a call whose timeout expired; once no other
call uses it, its worker processes are terminated, so that abandoned work
neither keeps CPUs busy nor delays the interpreter's exit.
"""
import concurrent.futures
import functools
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ParamSpec, TypeVar

import _lateral
import _lateral_progress

from . import _params

_P = ParamSpec("_P")
_T = TypeVar("_T")
log = _lateral_progress.package_logger("parallel")

KEEP = 2

_lock = threading.Lock()
_pools: "dict[int, Pool]" = {}  # max_workers -> Pool, oldest first


class ProcessPool(concurrent.futures.Executor):
    """A ``multiprocessing.Pool`` as a ``concurrent.futures.Executor`` whose
    futures fail with ``BrokenProcessPool`` when a worker process dies."""

    def __init__(self, max_workers: int) -> None:
        self._pool = multiprocessing.Pool(max_workers)
        self._lock = threading.Lock()
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._broken: str | None = None
        self._closed = False
        self._wake_r, self._wake_w = os.pipe()
        self._watcher = threading.Thread(target=self._watch, daemon=True,
                                         name="parallel-process-watcher")
        self._watcher.start()
        log.debug("process pool opened: %d worker processes started", max_workers)

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args,
               **kwargs: _P.kwargs) -> concurrent.futures.Future[_T]:
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        # Handed to multiprocessing, a call will run (its pool cannot take it
        # back), so it cannot be cancelled: only terminating the pool stops it.
        future.set_running_or_notify_cancel()
        with self._lock:
            if self._broken is not None:
                raise BrokenProcessPool(self._broken)
            if self._closed:
                raise RuntimeError("cannot schedule new calls after shutdown")
            self._pending.add(future)
        try:
            self._pool.apply_async(
                fn, args, kwargs,
                callback=functools.partial(self._settle, future, True),
                error_callback=functools.partial(self._settle, future, False))
        except BaseException:
            with self._lock:
                self._pending.discard(future)
            raise
        return future

    def _settle(self, future: concurrent.futures.Future[Any], ok: bool, value: Any) -> None:
        # Runs in the pool's result thread, which must never see an exception.
        try:
            with self._lock:
                self._pending.discard(future)
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        except concurrent.futures.InvalidStateError:
            pass  # cancelled meanwhile
        except BaseException:  # a done-callback's own failure is not ours
            pass

    def _watch(self) -> None:
        sentinels = {process.sentinel: process
                     for process in self._pool._pool}  # type: ignore[attr-defined]
        ready: list[Any]
        try:
            ready = multiprocessing.connection.wait(list(sentinels) + [self._wake_r])
        except OSError as exc:
            ready, reason = [], f"the process pool's watcher failed: {exc}"
        else:
            dead = [sentinels[fd] for fd in ready if fd in sentinels]
            reason = "a worker process died" + "".join(
                f" (pid {p.pid}, exit code {p.exitcode})" for p in dead[:1])
        if self._wake_r in ready or self._closed:
            os.close(self._wake_r)
            return
        self._break(reason)

    def _break(self, reason: str) -> None:
        log.warning("process pool broken: %s; its pending calls fail with "
                    "BrokenProcessPool", reason)
        with self._lock:
            self._broken = reason
            pending, self._pending = list(self._pending), set()
        for future in pending:
            try:
                future.set_exception(BrokenProcessPool(reason))
            except concurrent.futures.InvalidStateError:
                pass

    def _stop_watching(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._closed = True
        os.write(self._wake_w, b"x")
        os.close(self._wake_w)
        return True

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        # cancel_futures has nothing to do: a submitted call cannot be taken
        # back from multiprocessing (see submit); terminate_workers() stops it.
        if self._stop_watching():
            self._pool.close()
            log.debug("process pool closed")
        if wait:
            self._pool.join()
            self._watcher.join()

    def terminate_workers(self) -> None:
        """Stop the worker processes now; calls still pending fail with
        BrokenProcessPool."""
        self._stop_watching()
        log.debug("process pool terminated")
        with self._lock:
            pending, self._pending = list(self._pending), set()
        for future in pending:
            try:
                future.set_exception(BrokenProcessPool("the process pool was terminated"))
            except concurrent.futures.InvalidStateError:
                pass
        self._pool.terminate()


class Pool:
    """A cached ProcessPool and the number of calls using it."""

    __slots__ = ("executor", "users", "doomed")

    def __init__(self, executor: ProcessPool) -> None:
        self.executor = executor
        self.users = 0
        self.doomed = False  # terminate its workers when the last user leaves


def _forget_after_fork() -> None:
    global _lock
    _lock = threading.Lock()
    _pools.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def default_workers() -> int:
    return _params.default_process_workers()


def acquire(max_workers: int) -> Pool:
    """The open pool of ``max_workers`` processes (started on first use),
    counted as used until :func:`release`."""
    # The table's lock is taken by the core's locked_call, not a with block,
    # for the reason parallel._threads._locked gives.
    pool, idle_evicted = _lateral.locked_call(_lock, _take_pool, max_workers)
    for old in idle_evicted:
        old.executor.shutdown(wait=False)
    return pool


def _take_pool(max_workers: int) -> tuple[Pool, list[Pool]]:
    """The pool of ``max_workers`` processes, one more user counted, and the
    idle pools evicted to make room for it.  Contract: _lock held."""
    evicted = []
    pool = _pools.get(max_workers)
    if pool is None:
        while len(_pools) >= KEEP:
            evicted.append(_pools.pop(next(iter(_pools))))
        pool = _pools[max_workers] = Pool(ProcessPool(max_workers))
    pool.users += 1
    return pool, [old for old in evicted if old.users == 0]


def release(pool: Pool, abandoned: bool = False, broken: bool = False) -> None:
    """A call is done with ``pool``.  ``abandoned``: it timed out with chunks
    still running; ``broken``: a worker died."""
    cached, last_user = _lateral.locked_call(_lock, _let_go, pool, abandoned, broken)
    if last_user and (pool.doomed or broken):
        _terminate(pool.executor)
    elif last_user and not cached:
        pool.executor.shutdown(wait=False)


def _let_go(pool: Pool, abandoned: bool, broken: bool) -> tuple[bool, bool]:
    """One user fewer: (whether the table still has ``pool``, whether that
    was its last user).  Contract: _lock held."""
    pool.users -= 1
    if abandoned or broken:
        _uncache(pool)
    pool.doomed = pool.doomed or abandoned
    return any(p is pool for p in _pools.values()), pool.users == 0


def _uncache(pool: Pool) -> None:
    """Contract: _lock held."""
    for key, value in list(_pools.items()):
        if value is pool:
            del _pools[key]


def _terminate(executor: concurrent.futures.Executor) -> None:
    terminate = getattr(executor, "terminate_workers", None)  # ours; Python 3.14+
    if terminate is not None:
        terminate()
        return
    # A ProcessPoolExecutor on older Pythons: stop the workers, then let the
    # executor notice.
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()
    executor.shutdown(wait=False, cancel_futures=True)


def shutdown() -> None:
    """Shut down every cached pool, waiting for their processes."""
    pools: list[Pool] = _lateral.locked_call(_lock, _take_all)
    for pool in pools:
        pool.executor.shutdown(wait=True)


def _take_all() -> list[Pool]:
    """Empty the table; the pools it had.  Contract: _lock held."""
    pools = list(_pools.values())
    _pools.clear()
    return pools
