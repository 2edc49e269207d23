"""The thread executor: batches on the core's pools, with a cache of idle pools.

A call borrows a pool from the cache (or opens one), runs one core batch on
it and gives it back when the batch is done, so that repeated calls -- small
fan-outs in a web view, say -- reuse running threads, and concurrent calls
never share a pool.  A batch abandoned while items still run (timeout,
Ctrl-C, an async result dropped unread) keeps its pool until those items
have finished, and meanwhile nobody else waits behind them.  The pool holds
such a batch weakly: the items and results of a batch nobody reads are freed
when its last item ends, not at the next call.  ``shutdown()`` closes every
pool.

Every pool the executor opens is in ``_pools`` from the moment it exists
(without threads yet) until it is closed, with what holds it: ``None`` while
idle, else a weak reference to what keeps it busy -- first the result list
of the call using it, then, once that call let go of an unfinished batch,
the batch.  The core's batch keeps its result list for its whole life, so a
borrowed pool stays busy while the call or its batch lives, and comes back
once both are gone (the next ``_acquire`` takes it back).  This is what
makes a signal harmless: wherever a handler raises (``ThreadRun.__init__``
before the batch is stored, ``api.start()`` before the execution's
finalizer exists, ``release()`` halfway), the pool is in this table in a
state the next call understands, and ``shutdown()`` closes it.
"""
import enum
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

import _lateral
import _lateral_progress

from . import _params
from ._params import Work
from .models import ListResult, arg

log = _lateral_progress.package_logger("parallel")
_T = TypeVar("_T")

IDLE_POOLS = 4  # idle pools kept; more are closed when given back


class _Unfinished:
    """What a result slot holds until its call has returned (see
    ThreadRun.timed_out_outcome)."""

    def __repr__(self) -> str:
        return "<unfinished call>"


_UNFINISHED = _Unfinished()

_lock = threading.Lock()
class _Marker(enum.Enum):
    CLOSING = "closing"


#: The state of a pool being closed (a type checker tells it from a weak reference).
_CLOSING: Final = _Marker.CLOSING
#: A weak reference to what keeps a pool busy: a call's result list or a batch.
_Holder = weakref.ref[Any]
#: pool -> None (idle), a weak reference (busy while its referent lives and,
#: for a batch, is not done) or _CLOSING.  Dict order: oldest pool first.
_pools: dict[_lateral.Pool, _Holder | _Marker | None] = {}


def _locked(fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)`` with ``_lock`` held.  Not a ``with _lock:`` block: a
    signal handler that raises where such a block acquired the lock but has
    not yet covered it (right after ``__enter__`` on CPython 3.14, at a
    loop's jump back on 3.13.0) leaves the lock held, and the next call
    hangs.  The core's locked_call has no such point."""
    return _lateral.locked_call(_lock, fn, *args)


def _forget_after_fork() -> None:
    # The child has none of the parent's threads: its pools are unusable.
    global _lock
    _lock = threading.Lock()
    _pools.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _is_free(holder: _Holder) -> bool:
    """Whether a busy pool's holder lets it go: its referent is gone, or is
    a batch that is done (a result list has no ``done``: busy while alive)."""
    held = holder()
    return held is None or bool(getattr(held, "done", False))


def _acquire(max_workers: int, token: object) -> _lateral.Pool:
    """A pool of at least ``max_workers`` threads, busy while ``token`` (the
    call's result list) lives or until :func:`_release`."""
    holder = weakref.ref(token)
    reclaimed, chosen = _locked(_lend_idle_pool, max_workers, holder)
    if reclaimed:
        _trim()
    if chosen is not None:
        return chosen
    # Sized for the default so that later default-sized calls can reuse it;
    # the batch's tickets keep this call to max_workers threads.  It has no
    # thread until its first batch: lost before the table has it, it leaks
    # nothing.
    pool = _lateral.Pool(max(max_workers, _params.default_thread_workers()), "parallel")
    _locked(_pools.__setitem__, pool, holder)
    log.debug("thread pool opened: up to %d worker threads, started as calls need them",
              pool.max_workers)
    return pool


def _lend_idle_pool(max_workers: int,
                    holder: _Holder) -> tuple[bool, _lateral.Pool | None]:
    """Reclaim the pools nothing holds, then lend the newest idle one of at
    least ``max_workers`` threads to ``holder``: (whether any was
    reclaimed, the pool or None).  Contract: _lock held."""
    reclaimed = _reclaim()
    chosen = _idle_pool(max_workers)
    if chosen is not None:
        _pools[chosen] = holder
    return reclaimed, chosen


def _reclaim() -> bool:
    """Make idle the busy pools that nothing holds any more; True if any.
    Contract: _lock held."""
    reclaimed = False
    for pool, held in _pools.items():
        if held is not None and held is not _CLOSING and _is_free(held):
            _pools[pool] = None
            reclaimed = True
    return reclaimed


def _idle_pool(max_workers: int) -> _lateral.Pool | None:
    """The newest idle pool of at least ``max_workers`` threads, or None.
    Contract: _lock held."""
    chosen = None
    for pool, held in _pools.items():
        if held is None and pool.max_workers >= max_workers and not pool.closed:
            chosen = pool
    return chosen


def _release(pool: _lateral.Pool, token: object, batch: _lateral.Batch | None) -> None:
    """The call whose result list is ``token`` is done with ``pool``: it
    becomes idle, or stays busy while ``batch`` still runs.  Does nothing if
    the pool is no longer that call's (a second release, or shutdown())."""
    if _locked(_mark_released, pool, token, batch):
        _trim()


def _mark_released(pool: _lateral.Pool, token: object, batch: _lateral.Batch | None) -> bool:
    """The state change of _release; True if the pool became idle.
    Contract: _lock held."""
    held = _pools.get(pool)
    if held is None or held is _CLOSING or held() is not token:
        return False
    if batch is not None and not batch.done:
        _pools[pool] = weakref.ref(batch)
        return False
    _pools[pool] = None
    return True


def _trim() -> None:
    """Close the idle pools beyond IDLE_POOLS (the oldest first)."""
    _close(_locked(_mark_excess_idle))


def _mark_excess_idle() -> list[_lateral.Pool]:
    """Mark _CLOSING the idle pools beyond IDLE_POOLS; return them.
    Contract: _lock held."""
    idle = [pool for pool, held in _pools.items() if held is None]
    excess = idle[:max(0, len(idle) - IDLE_POOLS)]
    for pool in excess:
        _pools[pool] = _CLOSING
    return excess


def _close(pools: list[_lateral.Pool]) -> None:
    """Close ``pools`` (marked _CLOSING), waiting for their work, and forget
    them.  Interrupted, the rest stay marked, for shutdown() to close."""
    for pool in pools:
        if not pool.forked:
            pool.close()
            log.debug("thread pool closed")
        _locked(_forget_closed, pool)


def _forget_closed(pool: _lateral.Pool) -> None:
    """Contract: _lock held."""
    if _pools.get(pool) is _CLOSING:
        del _pools[pool]


def busy_pools() -> int:
    """How many pools are lent to a call or still run an abandoned batch."""
    holders: list[_Holder | _Marker | None] = _locked(list, _pools.values())
    return sum(held is not None and held is not _CLOSING and not _is_free(held)
               for held in holders)


def shutdown() -> None:
    """Close every pool, waiting for the items still running on them."""
    _close(_locked(_mark_all_closing))


def _mark_all_closing() -> list[_lateral.Pool]:
    """Mark every pool _CLOSING; return them.  Contract: _lock held."""
    pools = list(_pools)
    for pool in pools:
        _pools[pool] = _CLOSING
    return pools


class ThreadRun:
    """One Work running as a core batch."""

    #: Dropped unread, the run needs no release: its pool comes back once
    #: the batch has ended too (see _acquire).
    release_when_dropped = False

    def __init__(self, work: Work, max_workers: int | None, silent: bool) -> None:
        workers = max_workers or _params.default_thread_workers()
        # The result list the core fills in place (returned as it is when
        # nothing fails: no copy), and the token that keeps the pool busy.
        slots: ListResult[Any] = ListResult([_UNFINISHED])
        self._slots = slots
        slots *= len(work.items)
        self._batch: _lateral.Batch | None = None
        self._released = False
        self._pool = pool = _acquire(workers, slots)
        try:
            self._batch = pool.map(
                work.fn, work.items, unpack=work.unpack, extras=work.extras,
                arg_type=arg, stop_on_error=not silent, tickets=workers, results=slots)
        except BaseException:
            _release(pool, slots, None)
            raise

    @property
    def _started(self) -> _lateral.Batch:
        return cast(_lateral.Batch, self._batch)  # set once __init__ returned

    def wait(self, timeout: float | None) -> bool:
        return self._started.wait(timeout)

    def add_done_callback(self, fn: Callable[[], object]) -> None:
        """Call ``fn()`` once the batch is done (at once if it is), in the
        thread that finishes it."""
        self._started.add_done_callback(lambda _batch: fn())

    def timed_out_outcome(self) -> tuple[list[Any], dict[int, BaseException], list[int]]:
        """(results, {index: exception}, indexes of the calls not finished)
        of a run that did not end in time: copies, since its running calls
        still fill the live list."""
        errors = dict(self._started.errors)
        values = list(self._slots)  # after errors: a call failing between is late
        late = [i for i, value in enumerate(values) if value is _UNFINISHED and i not in errors]
        return values, errors, late

    @property
    def finished(self) -> int:
        """Items whose call returned or raised (progress reports)."""
        return self._started.finished

    def cancel(self) -> None:
        self._started.cancel()

    def outcome(self) -> tuple[list[Any], dict[int, BaseException]]:
        """(results list, {index: exception}) of a finished run."""
        return self._started.results, self._started.errors

    @property
    def pending_work(self) -> _lateral.Batch:
        """What the interpreter's exit waits for (see api): the batch."""
        return self._started

    def release(self, abandoned: bool = False) -> None:
        """Give the pool back, or leave it busy while abandoned items still
        run (threads cannot be stopped: they finish their current item)."""
        if self._released:
            return
        _release(self._pool, self._slots, self._batch)
        self._released = True
