"""Runs on concurrent.futures executors: parallel's process pools, and any
Executor passed as ``executor=`` (used as is, never shut down).

Work is cut into units -- chunks of items for process pools (see _chunks),
one item per future for other executors -- submitted in input order.  Completion callbacks
record each unit's results, submit the next units when ``max_workers``
limits the calls in flight, and, on the first error when errors are not
silenced, cancel the units after it.
"""
import concurrent.futures
import functools
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import _lateral_sync

from . import _processes, _worker
from ._params import Work
from .exceptions import WorkerProcessError
from .models import ListResult

_PENDING, _SUBMITTED, _FINISHED = 0, 1, 2


class Unit:
    """Items ``start``..``end - 1`` sent as one submission."""

    __slots__ = ("start", "end", "future", "state", "value", "dropped")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self.future: concurrent.futures.Future[Any] | None = None
        self.state = _PENDING
        self.value: Any = None  # what the future returned, decoded by the waiter
        self.dropped = False  # cancelled by this run: its items do not matter


class Codec(Protocol):
    """How a run's units travel: what to submit for a unit, and what its
    future's value means."""

    def payload(self, unit: Unit) -> tuple[Any, ...]:
        """The arguments of ``executor.submit`` for ``unit``."""

    def error_indexes(self, unit: Unit, value: Any) -> Iterable[int]:
        """The items of ``unit`` that failed, from its future's value."""

    def decode(self, unit: Unit, value: Any) -> tuple[list[Any], dict[int, BaseException]]:
        """(results, {index: exception}) of ``unit`` from its future's value."""


class FutureRun:
    """One Work running as futures of an executor."""

    #: Dropped unread, the run still gives back parallel's process pool.
    release_when_dropped = True

    def __init__(self, executor: concurrent.futures.Executor | None, units: list[Unit], n: int,
                 codec: Codec | None, window: int | None, stop_on_error: bool,
                 owned: _processes.Pool | None = None) -> None:
        self._executor = executor
        self._units = units
        self._codec = codec
        self._window = window or len(units)
        self._stop_on_error = stop_on_error
        self._owned = owned      # parallel's own _processes.Pool, or None
        # Not a Lock: the program's thread waits here, where Ctrl-C lands,
        # and the executor's threads need the lock for every result.
        self._guard = _lateral_sync.Guard()
        self._done = not units
        self._ready: list[Unit] = []  # finished units whose value is not decoded yet
        self._results: ListResult[Any] = ListResult([None])
        self._results *= n  # in place: one allocation, and it stays a ListResult
        self._errors: dict[int, BaseException | None] = {}
        self._fatal: BaseException | None = None
        self._limit = n          # items from here on no longer matter
        self._next = 0           # next unit to submit
        self._frontier = 0       # first unit not finished
        self.finished = 0        # items of the finished units (progress reports)
        self._in_flight = 0
        self._cancelled = False
        self._pumping = False
        self._repump = False
        self._released = False
        # Cancelling from inside a completion callback is safe with the
        # standard executors; others (dask) are left to the waiting thread.
        self._cancel_in_callback = isinstance(
            executor, (concurrent.futures.ProcessPoolExecutor,
                       concurrent.futures.ThreadPoolExecutor, _processes.ProcessPool))
        self._deferred_cancel: list[concurrent.futures.Future[Any]] = []
        self._callbacks: list[Callable[[], object]] = []  # done callbacks not called yet

    # -- submitting ---------------------------------------------------------

    def start(self) -> "FutureRun":
        self._pump()
        if self._fatal is not None and not self._done:
            self.cancel()
        if self._fatal is not None:
            raise self._fatal
        return self

    def _take_unit(self) -> Unit | None:
        """The next unit to submit, or None.  Contract: _guard held."""
        if (self._cancelled or self._fatal is not None or self._next >= len(self._units)
                or self._in_flight >= self._window):
            return None
        unit = self._units[self._next]
        if unit.start >= self._limit:
            return None
        self._next += 1
        self._in_flight += 1
        unit.state = _SUBMITTED
        return unit

    def _pump(self) -> None:
        # One thread submits at a time; a callback that finds it busy asks it
        # to look again instead of recursing (an executor may run callbacks
        # inside submit()).
        if not self._guard.call(self._begin_pump):
            return
        while (unit := self._guard.call(self._next_pumped)) is not None:
            self._submit(unit)

    def _begin_pump(self) -> bool:
        """True if this thread is now the one pumping.  Contract: _guard held."""
        if self._pumping:
            self._repump = True
            return False
        self._pumping = True
        return True

    def _next_pumped(self) -> Unit | None:
        """The next unit to submit; None ends the pumping.  Contract: _guard held."""
        while (unit := self._take_unit()) is None and self._repump:
            self._repump = False
        if unit is None:
            self._pumping = False
        return unit

    def _submit(self, unit: Unit) -> None:
        # The payload is made here, unit by unit, so that the first chunks
        # run while the next ones are pickled.
        try:
            # Units exist only with an executor and a codec (see start_process).
            fut = self._executor.submit(*self._codec.payload(unit))  # type: ignore[union-attr]
        except BaseException as exc:  # unpicklable, executor shut down, broken...
            self._finish(unit, {}, fatal=_fatal_error(exc, unit, self._owned))
            return
        unit.future = fut
        if self._cancelled:
            fut.cancel()
        fut.add_done_callback(functools.partial(self._on_done, unit))

    # -- completing ---------------------------------------------------------

    def _on_done(self, unit: Unit, fut: concurrent.futures.Future[Any]) -> None:
        # Runs in the executor's thread: only note where errors are; the
        # waiting thread decodes the results, while other units still run.
        errors: dict[int, BaseException | None] = {}
        fatal: BaseException | None = None
        value = None
        exc: BaseException | None
        try:
            if fut.cancelled():
                if not (self._cancelled or unit.dropped):
                    exc = concurrent.futures.CancelledError(
                        "the executor cancelled this call")
                    errors = {i: exc for i in range(unit.start, unit.end)}
            else:
                exc = fut.exception()
                if exc is None:
                    value = fut.result()
                    errors = dict.fromkeys(
                        self._codec.error_indexes(unit, value))  # type: ignore[union-attr]
                elif isinstance(exc, concurrent.futures.BrokenExecutor):
                    fatal = _fatal_error(exc, unit, self._owned)
                else:
                    errors = {i: exc for i in range(unit.start, unit.end)}
        except BaseException as exc:  # a result that cannot be unpickled, ...
            fatal = exc
        self._finish(unit, errors, fatal, value)

    def _finish(self, unit: Unit, errors: dict[int, BaseException | None],
                fatal: BaseException | None = None, value: Any = None) -> None:
        to_cancel, finished = self._guard.call(self._record, unit, errors, fatal, value)
        for fut in to_cancel:
            fut.cancel()
        if finished:
            self._call_callbacks()
        else:
            self._pump()

    def _record(self, unit: Unit, errors: dict[int, BaseException | None],
                fatal: BaseException | None, value: Any,
                ) -> tuple[list[concurrent.futures.Future[Any]], bool]:
        """Note a finished unit; return (futures to cancel, whether the run
        is done).  Contract: _guard held."""
        to_cancel: list[concurrent.futures.Future[Any]] = []
        self._in_flight -= 1
        unit.state = _FINISHED
        self.finished += unit.end - unit.start
        # The future keeps its done-callback, which refers to this run:
        # dropping it lets the run (and its items) go without waiting
        # for the cycle collector.
        unit.future = None
        if value is not None:
            unit.value = value
            self._ready.append(unit)
        if errors:
            self._errors.update(errors)
            if self._stop_on_error and min(errors) < self._limit:
                self._limit = min(errors)
                to_cancel = self._units_after_limit()
        if fatal is not None and self._fatal is None:
            self._fatal = fatal
            # A broken pool fails every pending future itself; cancelling
            # them first makes CPython 3.11's terminate_broken() raise
            # InvalidStateError and leave the workers running.
            if not isinstance(fatal, WorkerProcessError):
                to_cancel = self._units_after_limit(0)
        self._done = self._check_done()
        if not self._cancel_in_callback:
            self._deferred_cancel.extend(to_cancel)
            to_cancel = []
        self._guard.notify_all()
        return to_cancel, self._done

    def _units_after_limit(self, limit: int | None = None,
                           ) -> list[concurrent.futures.Future[Any]]:
        """Futures of submitted, unfinished units from the limit on.
        Contract: _guard held."""
        limit = self._limit if limit is None else limit
        dropped = [u for u in self._units[:self._next]
                   if u.state == _SUBMITTED and u.start >= limit and u.future is not None]
        for unit in dropped:
            unit.dropped = True
        return [unit.future for unit in dropped if unit.future is not None]

    def _check_done(self) -> bool:
        """Contract: _guard held."""
        units = self._units
        while self._frontier < len(units) and units[self._frontier].state == _FINISHED:
            self._frontier += 1
        if self._fatal is not None or self._cancelled:
            return self._in_flight == 0 or self._fatal is not None
        return self._frontier == len(units) or units[self._frontier].start >= self._limit

    # -- the run's interface ------------------------------------------------

    def wait(self, timeout: float | None) -> bool:
        """True once done; decodes finished units meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ready, deferred, done = self._guard.call(self._take_news)
            if not (ready or deferred or done):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._guard.sleep_unless(self._has_news, left)
                continue
            for fut in deferred:
                fut.cancel()
            self._decode(ready)
            if done and not ready:
                return True

    def _take_news(self) -> tuple[list[Unit], list[concurrent.futures.Future[Any]], bool]:
        """(units to decode, futures to cancel, done).  Contract: _guard held."""
        ready, self._ready = self._ready, []
        deferred, self._deferred_cancel = self._deferred_cancel, []
        return ready, deferred, self._done

    def _has_news(self) -> bool:
        """Contract: _guard held."""
        return bool(self._ready or self._deferred_cancel or self._done)

    def _decode(self, units: list[Unit]) -> None:
        results = self._results
        for unit in units:
            values, errors = self._codec.decode(unit, unit.value)  # type: ignore[union-attr]
            unit.value = None
            results[unit.start:unit.start + len(values)] = values
            if errors:
                self._guard.call(self._errors.update, errors)

    def cancel(self) -> None:
        """Cancel the units not started; running ones finish unobserved."""
        for fut in self._guard.call(self._mark_cancelled):
            fut.cancel()
        self._call_callbacks()

    def _mark_cancelled(self) -> list[concurrent.futures.Future[Any]]:
        """The futures to cancel.  Contract: _guard held."""
        self._cancelled = True
        if self._in_flight == 0:
            self._done = True
            self._guard.notify_all()
        return [u.future for u in self._units[:self._next]
                if u.state == _SUBMITTED and u.future is not None]

    def add_done_callback(self, fn: Callable[[], object]) -> None:
        """Call ``fn()`` once the run is done (at once if it is), in the
        thread that finishes it."""
        self._guard.call(self._add_callback, fn)
        self._call_callbacks()

    def _add_callback(self, fn: Callable[[], object]) -> None:
        """Contract: _guard held -- the list is looked up under it too, since
        _take_callbacks replaces it."""
        self._callbacks.append(fn)

    def _call_callbacks(self) -> None:
        for fn in self._guard.call(self._take_callbacks):
            fn()

    def _take_callbacks(self) -> list[Callable[[], object]]:
        """The callbacks to call now: all once done, else none.
        Contract: _guard held."""
        if not self._done:
            return []
        callbacks, self._callbacks = self._callbacks, []
        return callbacks

    def wait_done(self) -> None:
        """Wait until the run is done, decoding nothing (what the
        interpreter's exit does for a run nobody reads)."""
        self._guard.wait_for(lambda: self._done)

    @property
    def pending_work(self) -> "FutureRun":
        """What the interpreter's exit waits for (see api): the run itself,
        which the futures' callbacks keep alive until it is done."""
        return self

    def outcome(self) -> tuple[list[Any], dict[int, BaseException]]:
        """(results list, {index: exception}) of a finished run."""
        if self._fatal is not None:
            raise self._fatal
        self.wait(0)  # decode what is left
        return self._results, self._guard.call(self._raised)

    def _raised(self) -> dict[int, BaseException]:
        """{index: exception} of the items that raised.  Contract: _guard held."""
        return {i: e for i, e in self._errors.items() if e is not None}

    def timed_out_outcome(self) -> tuple[list[Any], dict[int, BaseException], list[int]]:
        """(results, {index: exception}, indexes of the calls not finished)
        of a run that did not end in time.  A unit that finished after the
        last decoding has no values in the results yet: its calls count as
        late."""
        results, errors = self.outcome()
        return list(results), errors, self._guard.call(self._late, errors)

    def _late(self, errors: dict[int, BaseException]) -> list[int]:
        """Indexes of the calls not finished, or whose values are not
        decoded yet.  Contract: _guard held."""
        undecoded = set(self._ready)
        return [i for unit in self._units
                if unit.state != _FINISHED or unit in undecoded
                for i in range(unit.start, unit.end) if i not in errors]

    def release(self, abandoned: bool = False) -> None:
        """Done with the run.  ``abandoned``: its deadline passed; parallel's
        own process pool then stops serving new calls, and its workers are
        terminated once no other call uses it."""
        if self._released:
            return
        self._released = True
        if not self._owned:
            return
        busy = self._in_flight > 0  # one read: the GIL is enough
        _processes.release(self._owned, abandoned=abandoned and busy,
                           broken=isinstance(self._fatal, WorkerProcessError))


def _fatal_error(exc: BaseException, unit: Unit, owned: _processes.Pool | None) -> BaseException:
    if isinstance(exc, concurrent.futures.process.BrokenProcessPool):
        where = (f"items {unit.start}..{unit.end - 1}" if unit.end - unit.start > 1
                 else f"item {unit.start}")
        after = ("parallel's process pool was discarded; the next call starts a new one"
                 if owned else "the executor passed as executor= is now broken")
        error = WorkerProcessError(
            f"a worker process died unexpectedly (killed by a signal, os._exit() or "
            f"out of memory?) while {where} had not finished; {after}")
        error.__cause__ = exc
        return error
    return exc


# -- any other executor ------------------------------------------------------

def start_generic(work: Work, executor: concurrent.futures.Executor, max_workers: int | None,
                  silent: bool) -> FutureRun:
    """Run ``work`` on the Executor passed, one future per call."""
    n = len(work.items)
    units = [Unit(index, index + 1) for index in range(n)]
    run = FutureRun(executor, units, n, _SingleCodec(work), max_workers, not silent)
    return run.start()


class _SingleCodec:
    """One call per future; its value is the call's return value, wrapped in
    a 1-tuple so that a None result is still a value."""

    def __init__(self, work: Work) -> None:
        self._work = work

    def payload(self, unit: Unit) -> tuple[Any, ...]:
        work = self._work
        args, kwargs = work.call_args(unit.start)
        fn = work.fn if work.fn is not None else work.items[unit.start][0]
        return _worker.invoke_wrapped, fn, args, kwargs

    @staticmethod
    def error_indexes(unit: Unit, value: Any) -> tuple[()]:
        return ()

    @staticmethod
    def decode(unit: Unit, value: Any) -> tuple[list[Any], dict[int, BaseException]]:
        return [value[0]], {}
