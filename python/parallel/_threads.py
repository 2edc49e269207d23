"""The thread executor: batches on the core's pools, with a cache of idle pools.

A call checks a pool out of the cache (or opens one), runs one core batch on
it and checks it back in when the batch is done, so that repeated calls --
small fan-outs in a web view, say -- reuse running threads, and concurrent
calls never share a pool.  A batch abandoned while items still run (timeout,
Ctrl-C, an async result dropped unread) parks its pool in ``_retiring``; the
pool returns to the cache once those items have finished, and meanwhile
nobody else waits behind them.  ``_retiring`` holds the batch weakly: the
items and results of a batch nobody reads are freed when its last item ends,
not at the next call.  ``shutdown()`` closes every cached pool.
"""
import os
import threading
import weakref

import _lateral

from . import _params
from .models import ListResult, arg

IDLE_POOLS = 4  # idle pools kept; more are closed when checked in

_lock = threading.Lock()
_idle = []       # pools ready for a batch, last used last
_retiring = []   # (pool, weakref to its abandoned batch, which still runs)


def _forget_after_fork():
    # The child has none of the parent's threads: its pools are unusable.
    global _lock
    _lock = threading.Lock()
    _idle.clear()
    _retiring.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _acquire(max_workers):
    _reap()
    with _lock:
        for i in range(len(_idle) - 1, -1, -1):
            if _idle[i].max_workers >= max_workers:
                return _idle.pop(i)
    # Sized for the default so that later default-sized calls can reuse it;
    # the batch's tickets keep this call to max_workers threads.
    size = max(max_workers, _params.default_thread_workers())
    return _lateral.Pool(size, "parallel")


def _check_in(pool):
    if pool.closed or pool.forked:
        return
    with _lock:
        if len(_idle) < IDLE_POOLS:
            _idle.append(pool)
            return
    pool.close()


def _release(pool, batch):
    if batch is None or batch.done:
        _check_in(pool)
    else:
        with _lock:
            _retiring.append((pool, weakref.ref(batch)))


def _reap():
    if not _retiring:
        return
    with _lock:
        finished = [entry for entry in _retiring if _finished(entry[1])]
        for entry in finished:
            _retiring.remove(entry)
    for pool, _ in finished:
        _check_in(pool)


def _finished(batch_ref):
    batch = batch_ref()
    return batch is None or batch.done


def shutdown():
    """Close every cached pool; wait for the items of abandoned batches."""
    with _lock:
        pools = list(_idle) + [pool for pool, _ in _retiring]
        _idle.clear()
        _retiring.clear()
    for pool in pools:
        if not pool.forked:
            pool.close()


def _result_slots(work):
    """For a sequence of parameters, the ListResult the core fills in place
    (returned as it is when nothing fails: no copy of the results)."""
    if work.keys is not None:
        return None
    slots = ListResult([None])
    slots *= len(work.items)
    return slots


class ThreadRun:
    """One Work running as a core batch."""

    def __init__(self, work, max_workers, silent):
        workers = max_workers or _params.default_thread_workers()
        self._pool = _acquire(workers)
        try:
            self._batch = self._pool.map(
                work.fn, work.items, unpack=work.unpack, extras=work.extras,
                arg_type=arg, stop_on_error=not silent, tickets=workers,
                results=_result_slots(work))
        except BaseException:
            _check_in(self._pool)
            raise
        self._released = False

    def wait(self, timeout):
        return self._batch.wait(timeout)

    def add_done_callback(self, fn):
        """Call ``fn()`` once the batch is done (at once if it is), in the
        thread that finishes it."""
        self._batch.add_done_callback(lambda _batch: fn())

    def cancel(self):
        self._batch.cancel()

    def outcome(self):
        """(results list, {index: exception}) of a finished run."""
        return self._batch.results, self._batch.errors

    def release(self, abandoned=False):
        """Give the pool back, or park it while abandoned items still run
        (threads cannot be stopped: they finish their current item)."""
        if self._released:
            return
        self._released = True
        _release(self._pool, self._batch)

