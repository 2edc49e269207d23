"""parallel's own process pools: standard ProcessPoolExecutors, kept open
between calls (one per max_workers, at most KEEP of them) so that a call does
not pay for starting processes.  They use multiprocessing's default start
method, as ProcessPoolExecutor does.

A pool that broke is discarded: the next call starts a new one.  So is a
pool left running the chunks of a call whose timeout expired; once no other
call uses it, its worker processes are terminated, so that abandoned work
neither keeps CPUs busy nor delays the interpreter's exit.
"""
import concurrent.futures
import os
import threading

from . import _params

KEEP = 2

_lock = threading.Lock()
_pools = {}  # max_workers -> Pool, oldest first


class Pool:
    """A cached ProcessPoolExecutor and the number of calls using it."""

    __slots__ = ("executor", "users", "doomed")

    def __init__(self, executor):
        self.executor = executor
        self.users = 0
        self.doomed = False  # terminate its workers when the last user leaves


def _forget_after_fork():
    global _lock
    _lock = threading.Lock()
    _pools.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def default_workers():
    return _params.default_process_workers()


def acquire(max_workers):
    """The open pool of ``max_workers`` processes (started on first use),
    counted as used until :func:`release`."""
    evicted = []
    with _lock:
        pool = _pools.get(max_workers)
        if pool is None:
            while len(_pools) >= KEEP:
                evicted.append(_pools.pop(next(iter(_pools))))
            pool = _pools[max_workers] = Pool(concurrent.futures.ProcessPoolExecutor(max_workers))
        pool.users += 1
        idle_evicted = [old for old in evicted if old.users == 0]
    for old in idle_evicted:
        old.executor.shutdown(wait=False)
    return pool


def release(pool, abandoned=False, broken=False):
    """A call is done with ``pool``.  ``abandoned``: it timed out with chunks
    still running; ``broken``: a worker died."""
    with _lock:
        pool.users -= 1
        if abandoned or broken:
            _uncache(pool)
        pool.doomed = pool.doomed or abandoned
        cached = any(p is pool for p in _pools.values())
        last_user = pool.users == 0
    if last_user and (pool.doomed or broken):
        _terminate(pool.executor)
    elif last_user and not cached:
        pool.executor.shutdown(wait=False)


def _uncache(pool):
    """Contract: _lock held."""
    for key, value in list(_pools.items()):
        if value is pool:
            del _pools[key]


def _terminate(executor):
    terminate = getattr(executor, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
        return
    # Older Pythons: stop the workers, then let the executor notice.
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()
    executor.shutdown(wait=False, cancel_futures=True)


def shutdown():
    """Shut down every cached pool, waiting for their processes."""
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.executor.shutdown(wait=True)
