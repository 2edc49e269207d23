"""How a map travels to worker processes: cut into chunks of items, each
pickled once (function and extras once per call), with the cost of a call
remembered so that cheap calls go in fewer, larger chunks.  The chunks run
as units of a FutureRun (_futures) on parallel's own process pool or on the
ProcessPoolExecutor passed."""
import concurrent.futures
import itertools
import os
from collections.abc import Hashable
from typing import Any

from . import _futures, _processes, _worker
from ._params import Work
from .exceptions import SerializationError

_tokens = itertools.count()

#: Work a chunk should hold, when the cost of a call is known: enough to
#: make a process pool's per-chunk overhead (~0.2 ms) negligible.
CHUNK_SECONDS = 0.005
#: Work a chunk should hold at most, when the cost of a call is known: two
#: workers' last chunks can end up to one chunk apart, so slow calls go in
#: small chunks.  (64 calls of ~15 ms took 3-8% less time in chunks of 2 to 4
#: than in 8 chunks of 8, measured against ProcessPoolExecutor.)  But never
#: more than MAX_CHUNKS_PER_WORKER: the cost remembered is the last call's,
#: and cheap calls of a function that was slow last time must not go in
#: thousands of chunks.
BALANCE_SECONDS = 0.04
MAX_CHUNKS_PER_WORKER = 16
_COSTS: dict[Hashable, float] = {}  # function's code -> seconds per call, measured by workers
_KEEP_COSTS = 256


def chunk_ranges(n: int, workers: int, seconds_per_call: float | None = None,
                 least_per_worker: int = 1) -> list[tuple[int, int]]:
    """(start, end) of the chunks of n items: four per worker, like
    multiprocessing, for balance; but when the calls are known to be cheap,
    fewer (down to ``least_per_worker`` per worker) so that each holds
    CHUNK_SECONDS of work, and when they are known to be slow, more, so that
    none holds more than BALANCE_SECONDS (or one call), up to
    MAX_CHUNKS_PER_WORKER.  Two per worker suit
    parallel's own pools: a chunk costs little there, and the second chunk's
    pickling overlaps with the first one's run."""
    chunks = 4 * workers
    if seconds_per_call is not None:
        wanted = int(seconds_per_call * n / CHUNK_SECONDS)
        chunks = max(least_per_worker * workers, min(chunks, wanted))
    size = max(1, -(-n // chunks))
    if seconds_per_call:
        size = min(size, max(1, int(BALANCE_SECONDS // seconds_per_call),
                             -(-n // (MAX_CHUNKS_PER_WORKER * workers))))
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def _cost_key(fn: object) -> Hashable | None:
    """What identifies a function across calls: its code (a lambda made anew
    for each call shares it)."""
    while fn is not None:
        code = getattr(fn, "__code__", None)
        if code is not None:
            return code  # type: ignore[no-any-return]
        fn = getattr(fn, "__wrapped__", None) or getattr(fn, "func", None)
    return None


def _note_cost(key: Hashable | None, seconds: float, calls: int) -> None:
    if key is None or calls <= 0:
        return
    if key not in _COSTS and len(_COSTS) >= _KEEP_COSTS:
        _COSTS.pop(next(iter(_COSTS)), None)
    _COSTS[key] = seconds / calls


def start_process(work: Work, executor: concurrent.futures.ProcessPoolExecutor | None,
                  max_workers: int | None, silent: bool) -> _futures.FutureRun:
    """Run ``work`` on a process pool: parallel's own (executor=None) or the
    ProcessPoolExecutor passed."""
    workers = max_workers or _processes.default_workers()
    n = len(work.items)
    codec = _ChunkCodec(work, _dump_call(work), not silent)
    own_pool = executor is None
    ranges = chunk_ranges(n, workers, _COSTS.get(codec.cost_key),
                          least_per_worker=2 if own_pool else 1)
    units = [_futures.Unit(start, end) for start, end in ranges]
    pool = None
    chosen: concurrent.futures.Executor | None = executor
    window: int | None
    if own_pool:
        pool = _processes.acquire(workers)
        chosen, window = pool.executor, None
    else:
        window = max_workers
    run = _futures.FutureRun(chosen, units, n, codec, window, not silent, pool)
    try:
        return run.start()
    except BaseException:
        run.release()
        raise


def _dump_call(work: Work) -> bytes:
    try:
        return _worker.dumps((work.fn, work.extras))
    except Exception as exc:
        what = f"the function {work.fn!r}" if work.fn is not None else "extras"
        if work.fn is not None and work.extras:
            try:
                _worker.dumps(work.fn)
            except Exception:
                pass
            else:
                what = "extras"
        raise SerializationError(f"{work.name}: {what} cannot be pickled to send it "
                                 f"to the worker processes: {exc}") from exc


def _dump_items(work: Work, start: int, end: int) -> bytes:
    chunk = work.items[start:end]
    try:
        return _worker.dumps_data(chunk)
    except Exception as exc:
        first_error = exc
    for index in range(start, end):
        try:
            _worker.dumps_data(work.items[index])
        except Exception as exc:
            raise SerializationError(
                f"{work.name}: {work.label(index)} cannot be pickled to send it to a "
                f"worker process: {exc}") from exc
    raise SerializationError(f"{work.name}: the parameters cannot be pickled: "
                             f"{first_error}") from first_error


class _ChunkCodec:
    """Chunks of items for run_chunk, which returns (failed positions, blob of
    (results, packed errors))."""

    def __init__(self, work: Work, call_blob: bytes, stop_on_error: bool) -> None:
        self._work = work
        self._call_blob = call_blob
        self._token = (os.getpid(), next(_tokens))
        self._stop_on_error = stop_on_error
        self.cost_key = _cost_key(work.fn)

    def payload(self, unit: _futures.Unit) -> tuple[Any, ...]:
        items_blob = _dump_items(self._work, unit.start, unit.end)
        return (_worker.run_chunk, self._token, self._call_blob, items_blob,
                self._work.unpack, self._stop_on_error)

    def error_indexes(self, unit: _futures.Unit, value: Any) -> list[int]:
        positions, _, seconds = value
        if not positions:
            _note_cost(self.cost_key, seconds, unit.end - unit.start)
        return [unit.start + position for position in positions]

    @staticmethod
    def decode(unit: _futures.Unit, value: Any) -> tuple[list[Any], dict[int, BaseException]]:
        results, packed = _worker.load(value[1])
        errors = {unit.start + pos: _worker.unpack_exception(p) for pos, p in packed.items()}
        return results, errors
