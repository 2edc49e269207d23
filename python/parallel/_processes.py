"""parallel's own process pools: worker processes behind the
``concurrent.futures`` interface, kept open between calls (one per
max_workers, at most KEEP of them) so that a call does not pay for starting
processes.  They use multiprocessing's default start method.

A pool is thin on purpose.  Each worker has a pipe of its own: the thread
that submits a chunk writes it straight to an idle worker (or queues it
until one is free), and one thread, ``parallel-process-results``, waits on
every worker's result pipe and exit sentinel at once.  So a chunk crosses
one thread hop each way, and a worker that dies is noticed at once: the
pool breaks, failing its pending calls with ``BrokenProcessPool`` as
``ProcessPoolExecutor`` would.  (``multiprocessing.Pool`` has three helper
threads, one of which wakes on every result and polls every worker: about a
third of the parent's time on a map of small items.)

A pool that broke is discarded: the next call starts a new one.  So is a
pool left running the chunks of a call whose timeout expired; once no other
call uses it, its worker processes are terminated, so that abandoned work
neither keeps CPUs busy nor delays the interpreter's exit.
"""
import atexit
import collections
import concurrent.futures
import multiprocessing
import multiprocessing.connection
import os
import pickle
import select
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.process import BaseProcess
from typing import Any, ParamSpec, TypeVar

import _lateral
import _lateral_progress

from . import _params, _worker

_P = ParamSpec("_P")
_T = TypeVar("_T")
_Future = concurrent.futures.Future
log = _lateral_progress.package_logger("parallel")

KEEP = 2
KILL_AFTER = 3.0  # seconds a terminated worker has to end before SIGKILL

_lock = threading.Lock()
_pools: "dict[int, Pool]" = {}  # max_workers -> Pool, oldest first
_live: "weakref.WeakSet[ProcessPool]" = weakref.WeakSet()  # cached or not


class _Worker:
    """A worker process and the parent's ends of its two pipes.  The task
    pipe is written by whichever thread hands the worker a call and closed by
    the results thread: ``pipe_lock`` keeps the two apart, for a descriptor
    closed while another thread writes to it may be reused by then, and the
    bytes would land in an unrelated file.  (The result pipe is the results
    thread's alone.)"""

    __slots__ = ("process", "tasks", "results", "pipe_lock")

    def __init__(self, context: multiprocessing.context.BaseContext, number: int) -> None:
        self.pipe_lock = threading.Lock()
        task_reader, self.tasks = context.Pipe(duplex=False)
        self.results, result_writer = context.Pipe(duplex=False)
        self.process: BaseProcess = context.Process(  # type: ignore[attr-defined]
            target=_worker.serve,
            args=(task_reader, result_writer, (self.tasks, self.results)),
            name=f"parallel-process-{number}", daemon=True)
        try:
            self.process.start()
        except BaseException:
            self.tasks.close()
            self.results.close()
            raise
        finally:
            task_reader.close()
            result_writer.close()

    def send(self, blob: bytes) -> None:
        """Write ``blob`` to the worker; nothing if it is gone (its
        sentinel breaks the pool).  The lock is taken in C, so that a Ctrl-C
        cannot leave it held (see parallel._threads._locked)."""
        _lateral.locked_call(self.pipe_lock, self._write, blob)

    def _write(self, blob: bytes) -> None:
        if self.tasks.closed:
            return
        try:
            self.tasks.send_bytes(blob)
        except OSError:
            pass

    def close_pipes(self) -> None:
        _lateral.locked_call(self.pipe_lock, self.tasks.close)
        self.results.close()


class ProcessPool(concurrent.futures.Executor):
    """``max_workers`` worker processes as a ``concurrent.futures.Executor``
    whose futures fail with ``BrokenProcessPool`` when a worker dies.  A
    submitted call that no worker has taken yet can be cancelled."""

    def __init__(self, max_workers: int) -> None:
        self._lock = threading.Lock()
        self._queue: collections.deque[tuple[_Future[Any], bytes]] = collections.deque()
        self._running: dict[_Worker, _Future[Any]] = {}
        self._broken: str | None = None
        self._closed = False
        self._pid = os.getpid()  # a forked child's copy of the pool is not its own
        self._workers: list[_Worker] = []
        self._results_thread = threading.Thread(
            target=self._serve, daemon=True, name="parallel-process-results")
        context = multiprocessing.get_context()
        self._idle: list[_Worker] = []
        try:
            for number in range(max_workers):
                self._workers.append(_Worker(context, number))
            self._idle = list(self._workers)
            self._results_thread.start()
        except BaseException:
            self._kill_workers()
            raise
        _live.add(self)
        log.debug("process pool opened: %d worker processes started", max_workers)

    # -- submitting ---------------------------------------------------------

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args,
               **kwargs: _P.kwargs) -> _Future[_T]:
        blob = _worker.dump_message((fn, args, kwargs))
        future: _Future[_T] = _Future()
        try:
            worker = self._locked(self._assign, future, blob)
            if worker is not None:
                worker.send(blob)
        except BaseException:
            if future.running():  # a worker has it, maybe not all of it
                self._lose_worker_midway()
            raise
        return future

    def _locked(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` with the pool's lock held, taken in C, in code a
        user's thread runs: the results thread needs the lock for every
        result, and a signal raising where a ``with`` block has acquired
        the lock but not yet covered it would leave it held (see
        parallel._threads._locked)."""
        return _lateral.locked_call(self._lock, fn, *args)

    def _assign(self, future: _Future[Any], blob: bytes) -> _Worker | None:
        """An idle worker, now running ``future``, or None with the call
        queued.  Contract: _lock held."""
        if self._broken is not None:
            raise BrokenProcessPool(self._broken)
        if self._closed:
            raise RuntimeError("cannot schedule new calls after shutdown")
        if not self._idle:
            self._queue.append((future, blob))
            return None
        worker = self._idle.pop()
        future.set_running_or_notify_cancel()  # new: nobody could cancel it
        self._running[worker] = future
        return worker

    def _lose_worker_midway(self) -> None:
        """An exception (a signal's, in this thread) came between giving a
        worker a call and writing all of it: the worker may wait for the
        rest for ever, and the call would never end.  The pool breaks and
        its workers are stopped; the next call starts a new pool."""
        self._break("a call was interrupted while it was being handed to a worker process")
        self._end_workers()  # their sentinels wake the results thread, which reaps them

    def _dispatch(self, worker: _Worker) -> None:
        """Hand ``worker``, which is free, the next queued call that was
        not cancelled, or mark it idle."""
        while True:
            with self._lock:
                if not self._queue or self._broken is not None:
                    self._idle.append(worker)
                    return
                future, blob = self._queue.popleft()
                # Marked running under the lock: _fail_pending, which takes
                # the queue and _running under it, never fails a future
                # between the two.  False: it was cancelled meanwhile.
                if not future.set_running_or_notify_cancel():
                    continue
                self._running[worker] = future
            worker.send(blob)
            return

    # -- the results thread -------------------------------------------------

    def _serve(self) -> None:
        by_fd = {}
        poller = select.poll()
        for worker in self._workers:
            for fd in (worker.results.fileno(), worker.process.sentinel):
                by_fd[fd] = worker
                poller.register(fd, select.POLLIN)
        try:
            while by_fd:
                for fd, _ in poller.poll():
                    ready = by_fd.get(fd)
                    if self._broken is not None:
                        return
                    if ready is None or self._receive(ready, fd):
                        continue
                    if self._exited(ready):
                        return
                    for gone in (ready.results.fileno(), ready.process.sentinel):
                        del by_fd[gone]
                        poller.unregister(gone)
        except Exception as exc:  # never leave the pending calls hanging
            self._break(f"the process pool's results thread failed: {exc!r}")
        finally:
            self._kill_workers()

    def _receive(self, worker: _Worker, fd: int) -> bool:
        """Settle the call ``worker`` finished; False if it is gone.  A
        result sent just before the worker died still counts."""
        conn = worker.results
        if fd != conn.fileno() and not conn.poll(0):
            return False
        try:
            reply = conn.recv_bytes()
        except (EOFError, OSError):
            return False
        with self._lock:
            future = self._running.pop(worker, None)
        self._dispatch(worker)  # first: the worker waits for it
        self._stop_if_drained()
        try:
            ok, value = pickle.loads(reply)
        except Exception as exc:  # a type this process cannot import, ...
            ok, value = False, exc
        try:
            if future is None:
                pass  # failed by terminate_workers meanwhile
            elif ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        except concurrent.futures.InvalidStateError:
            pass  # failed by terminate_workers meanwhile
        return fd == conn.fileno()

    def _exited(self, worker: _Worker) -> bool:
        """A worker ended: break the pool unless it was told to stop.
        True once every worker is gone or the pool broke."""
        worker.process.join()
        with self._lock:
            told = self._broken is not None or self._drained()
        if not told:
            self._break(f"a worker process died (pid {worker.process.pid}, "
                        f"exit code {worker.process.exitcode})")
            return True
        return all(w.process.exitcode is not None for w in self._workers)

    def _break(self, reason: str) -> None:
        if not self._locked(self._note_broken, reason):
            return
        log.warning("process pool broken: %s; its pending calls fail with "
                    "BrokenProcessPool", reason)
        self._fail_pending(BrokenProcessPool(reason))

    def _note_broken(self, reason: str) -> bool:
        """Record why the pool broke; False if it already had.  Contract:
        _lock held."""
        if self._broken is not None:
            return False
        self._broken = reason
        return True

    def _fail_pending(self, error: BrokenProcessPool) -> None:
        for future in self._locked(self._take_pending):
            try:
                future.set_exception(error)
            except concurrent.futures.InvalidStateError:
                pass  # cancelled meanwhile

    def _take_pending(self) -> list[_Future[Any]]:
        """Empty the running table and the queue; their futures.  Contract:
        _lock held."""
        futures = list(self._running.values()) + [f for f, _ in self._queue]
        self._running.clear()
        self._queue.clear()
        return futures

    # -- closing ------------------------------------------------------------

    def _stop_if_drained(self) -> None:
        """Once closed and with no call left, tell the workers to exit.  (An
        empty message: the end of a task pipe is not seen while workers
        forked later hold copies of its writing end.)"""
        for worker in self._locked(self._take_idle_if_drained):
            worker.send(b"")

    def _take_idle_if_drained(self) -> list[_Worker]:
        """The idle workers, taken, once the pool is drained; else none.
        Contract: _lock held."""
        if not self._drained():
            return []
        workers, self._idle = self._idle, []
        return workers

    def _drained(self) -> bool:
        """Closed, with no call running or queued.  Contract: _lock held."""
        return self._closed and not self._running and not self._queue

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._in_child():
            return
        first, cancelled = self._locked(self._close, cancel_futures)
        for future in cancelled:
            future.cancel()  # _dispatch skips them
        if first:
            log.debug("process pool closed")
        # Each time, not only the first: a first shutdown() interrupted
        # before this line would leave idle workers never told to stop.
        self._stop_if_drained()
        if wait:
            self._join_results_thread()

    def terminate_workers(self) -> None:
        """Stop the worker processes now; calls still pending fail with
        BrokenProcessPool."""
        if self._in_child():
            return
        reason = "the process pool was terminated"
        self._locked(self._close, False, reason)
        log.debug("process pool terminated")
        self._fail_pending(BrokenProcessPool(reason))
        self._end_workers()  # their sentinels wake the results thread
        self._join_results_thread()

    def _close(self, cancel_futures: bool, broken: str | None = None,
               ) -> tuple[bool, list[_Future[Any]]]:
        """Mark the pool closed (and broken, with a reason given): (whether
        it was open, the queued futures to cancel).  Contract: _lock held."""
        first = not self._closed
        self._closed = True
        self._broken = self._broken or broken
        return first, [future for future, _ in self._queue] if cancel_futures else []

    def _in_child(self) -> bool:
        """True in a process forked from the pool's: the garbage collector
        there may finalize a copy of a call that used the pool, and its
        pipes and workers are still the parent's (its locks may even have
        been copied held)."""
        return os.getpid() != self._pid

    @property
    def broken(self) -> bool:
        return self._broken is not None

    def _join_results_thread(self) -> None:
        """Wait until the results thread has ended, and with it every
        worker (it stops them on its way out)."""
        if self._results_thread is not threading.current_thread():
            self._results_thread.join()  # else a done-callback: it ends when it returns

    def _end_workers(self) -> None:
        """SIGTERM every worker, and SIGKILL those still running KILL_AFTER
        seconds later (a call may ignore SIGTERM).  Reaps none: only the
        results thread does, so that two threads never wait for one pid."""
        for worker in self._workers:
            worker.process.terminate()
        running = {worker.process.sentinel: worker for worker in self._workers}
        deadline = time.monotonic() + KILL_AFTER
        while running and (left := deadline - time.monotonic()) > 0:
            for sentinel in multiprocessing.connection.wait(list(running), left):
                del running[sentinel]  # type: ignore[arg-type]
        for worker in running.values():
            worker.process.kill()

    def _kill_workers(self) -> None:
        """End and reap every worker.  Contract: the results thread is not
        polling their pipes."""
        self._end_workers()
        for worker in self._workers:
            worker.process.join()
            worker.close_pipes()


class Pool:
    """A cached ProcessPool and the number of calls using it."""

    __slots__ = ("executor", "users", "doomed")

    def __init__(self, executor: ProcessPool) -> None:
        self.executor = executor
        self.users = 0
        self.doomed = False  # terminate its workers when the last user leaves


def _terminate_at_exit() -> None:
    # Before multiprocessing's own exit hook (registered earlier, so run
    # later) kills the daemonic workers, which would read as deaths.
    for executor in list(_live):
        executor.terminate_workers()


atexit.register(_terminate_at_exit)


def _forget_after_fork() -> None:
    global _lock
    _lock = threading.Lock()
    _pools.clear()
    _live.clear()  # the parent's: never the child's to stop
    _dropped.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


#: release() of calls dropped unread, left by their finalizers.
_dropped: "collections.deque[Callable[[], None]]" = collections.deque()


def release_later(release: Callable[[], None]) -> None:
    """What a finalizer does instead of calling ``release()``: the next
    :func:`acquire`, :func:`release` or :func:`shutdown` calls it.  A
    finalizer runs wherever the garbage collector does -- in a thread that
    holds this module's lock or the run's own, both of which release()
    takes -- so it takes no lock (deque.append is atomic)."""
    _dropped.append(release)


def _release_dropped() -> None:
    while _dropped:
        try:
            release_one = _dropped.popleft()
        except IndexError:  # another thread took the last one
            return
        release_one()


def default_workers() -> int:
    return _params.default_process_workers()


def acquire(max_workers: int) -> Pool:
    """The open pool of ``max_workers`` processes (started on first use),
    counted as used until :func:`release`."""
    _release_dropped()
    # The table's lock is taken by the core's locked_call, not a with block,
    # for the reason parallel._threads._locked gives.
    pool, idle_evicted = _lateral.locked_call(_lock, _take_pool, max_workers)
    for old in idle_evicted:
        old.executor.shutdown(wait=False)
    return pool


def _take_pool(max_workers: int) -> tuple[Pool, list[Pool]]:
    """The pool of ``max_workers`` processes, one more user counted, and the
    idle pools evicted to make room for it.  A broken pool (a call
    interrupted, a worker killed) is replaced.  Contract: _lock held."""
    evicted = []
    pool = _pools.get(max_workers)
    if pool is not None and pool.executor.broken:
        evicted.append(_pools.pop(max_workers))
        pool = None
    if pool is None:
        pool = Pool(ProcessPool(max_workers))  # first: if it fails, none was evicted
        while len(_pools) >= KEEP:
            evicted.append(_pools.pop(next(iter(_pools))))
        _pools[max_workers] = pool
    pool.users += 1
    return pool, [old for old in evicted if old.users == 0]


def release(pool: Pool, abandoned: bool = False, broken: bool = False) -> None:
    """A call is done with ``pool``.  ``abandoned``: it timed out with chunks
    still running; ``broken``: a worker died."""
    _release_dropped()
    cached, last_user = _lateral.locked_call(_lock, _let_go, pool, abandoned, broken)
    if last_user and (pool.doomed or broken):
        pool.executor.terminate_workers()
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


def shutdown() -> None:
    """Shut down every cached pool that no call uses, waiting for its
    processes.  A pool still in use (by a call in another thread, or an
    async call not read yet) leaves the table and shuts down when its last
    call releases it: shutting it down now would fail that call's next
    submission."""
    _release_dropped()
    idle: list[Pool] = _lateral.locked_call(_lock, _take_all)
    # Every pool is told to stop before the first wait: an interrupted wait
    # then leaves none open outside the table.
    for pool in idle:
        pool.executor.shutdown(wait=False)
    for pool in idle:
        pool.executor.shutdown(wait=True)


def _take_all() -> list[Pool]:
    """Empty the table; the pools it had that no call uses.  Contract:
    _lock held."""
    idle = [pool for pool in _pools.values() if pool.users == 0]
    _pools.clear()
    return idle
