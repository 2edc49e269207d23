"""StoreTaskReader: claims tasks from a store, runs them, writes the outcome."""
import atexit
import multiprocessing
import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeAlias, TypeVar, cast, overload
import time
import traceback
import uuid
import weakref

import _lateral
import _lateral_progress
import _lateral_sync

from ._resolve import TaskRefused, TaskResolver, verify_record
from ._running import Backoff, Finisher, Running, Watch
from ._util import is_one_shot, optional_callable
from .handles import COMPLETE, NEW, status_fields
from .registry import Functions, TaskRegistry, registry
from .serialization import secret_key
from .stores import open_store, task_queue
from .stores._records import Claim, Record, error_fields
from .stores.mapping import MappingTaskQueue
from .writer import result_signature

log = _lateral_progress.package_logger("strand")

_listening: weakref.WeakSet["StoreTaskReader"] = weakref.WeakSet()
_T = TypeVar("_T")

#: error_type of a task that ran longer than its ``time_limit``.
TIME_LIMIT = "TimeLimitExceeded"

# How a run_in='process' task's child is started.
_PROCESS_START = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() \
    else None

# What StoreTaskReader._finish_batch calls: a store's finish_tasks.
_FinishTasks: TypeAlias = Callable[[list[tuple[str, str, Record]]], list[bool]]

# What a retried task's record keeps of its failures.
_RETRY_FIELDS = ("failures", "last_error_type", "last_error_message", "last_error")

# The longest an idle listening reader blocks in the store before it looks
# at its stop event again.
_MAX_BLOCK = 1.0


class StoreTaskReader(TaskResolver):
    """Runs the tasks written to ``store`` (see ``StoreTaskWriter``).

    A task's function is resolved, in order, by ``get_task_func(record)``,
    by name in ``functions`` (a mapping of names to functions, an iterable
    of functions or a :class:`TaskRegistry`; default :data:`strand.registry`),
    and last from the record's pickled ``func`` -- only when the reader has
    ``secret`` and the record's HMAC signature matches it (and the key the
    record was found under).  A reader never runs code it was not given by
    its own process: any other task, and any record whose signature does not
    match, is marked ``error`` with the reason and nothing runs.
    ``require_signature=True`` refuses unsigned records too.

    ``listen()`` starts a background thread that claims tasks -- up to
    ``concurrency`` at once, several per round trip -- and runs them on a
    ``_lateral.Pool`` of ``concurrency`` threads of its own, holding up to
    ``prefetch`` more claimed ahead (default: ``concurrency`` when it is
    more than 1, else 0) so that a freed thread starts the next task
    without a round trip; one finisher thread writes the outcomes of the
    tasks that ended in one call; an idle reader
    blocks in the store (Redis ``XREADGROUP BLOCK``, a wake-up socket for
    SQLite) instead of polling.  Each task is claimed exactly once among all
    readers; the reader writes ``status`` (``running``, then ``complete`` or
    ``error``), ``result`` or ``error`` (the traceback) back, and logs one
    line per outcome on the ``strand`` logger.  ``stop()`` stops claiming
    and waits for the running tasks.  ``lease``: seconds a claim on a Sqlite
    or Redis store lasts without renewal (one watch thread renews all the
    reader's claims); a task whose reader died runs again after it.

    A record's ``retries``/``retry_delay`` queue a failed task again after
    ``retry_delay * 2 ** (failures - 1)`` seconds; ``time_limit`` marks a
    task still running after that many seconds ``error``
    (``TimeLimitExceeded``; a process task, ``run_in='process'``, is
    killed); ``result_ttl`` removes the record that long after it ended.

    While the store cannot be reached (a Redis server restarts: the errors
    in the store's ``connection_errors``) the listening reader keeps trying,
    backing off from ``poll_interval`` to ``max_reconnect_interval``, and
    logs one warning when the store goes away and one when it is back.  The
    outcome of a task that ended meanwhile is written once the store is back
    (unless the reader is stopped first: the task then runs again after its
    lease).

    ``progress``: while the reader listens, the count of tasks it finished
    (complete or failed; there is no total) is drawn on stderr with
    ``True`` when stderr is a terminal, ``"always"`` even when not,
    ``"lines"`` as plain lines for logs; a callable is called as
    ``progress(done, None)`` from a background thread (see docs/strand.md).
    """

    def __init__(self, store: Any, get_task_func: Callable[[Mapping[str, Any]], Any] | None = None,
                 *, functions: "Functions | None" = None, secret: str | bytes | None = None,
                 require_signature: bool = False, lease: float = 30.0, concurrency: int = 1,
                 prefetch: int | None = None, poll_interval: float = 0.01,
                 max_poll_interval: float = 0.5, max_reconnect_interval: float = 2.0,
                 name: str | None = None,
                 progress: _lateral_progress.ProgressOption = None) -> None:
        self._progress = _lateral_progress.check(progress, "StoreTaskReader")
        self._monitor: _lateral_progress.Monitor | None = None
        self.store = open_store(store)
        self._queue = task_queue(self.store)
        self.get_task_func = optional_callable(get_task_func, "get_task_func")
        self.functions = registry if functions is None else TaskRegistry(functions)
        self._key = secret_key(secret)
        self.require_signature = bool(require_signature)
        if self.require_signature and self._key is None:
            raise ValueError("require_signature=True needs secret=")
        self.lease = _positive(lease, "lease", allow_none=True)
        self.concurrency = _lateral.check_workers(concurrency, "concurrency")
        if prefetch is None:  # a one-at-a-time reader claims only the task it runs
            prefetch = self.concurrency if self.concurrency > 1 else 0
        self.prefetch = _prefetch(prefetch)
        self.poll_interval = _positive(poll_interval, "poll_interval")
        self.max_poll_interval = max(self.poll_interval,
                                     _positive(max_poll_interval, "max_poll_interval"))
        self.max_reconnect_interval = max(
            self.max_poll_interval, _positive(max_reconnect_interval, "max_reconnect_interval"))
        self._connection_errors: tuple[type[BaseException], ...] = tuple(
            getattr(self._queue, "connection_errors", ()))
        self._unreachable_since: float | None = None
        self._outage_lock = threading.Lock()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.completed = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: _lateral.Pool | None = None
        self._running: dict[str, Running] = {}
        # Not a Condition: the program's thread stops the reader, where Ctrl-C
        # lands, and every pool thread needs this lock to end its task.
        self._slots = _lateral_sync.Guard()
        self._watch = Watch(self)
        self._finisher: Finisher | None = None
        self._renews = self.lease is not None and not isinstance(self._queue, MappingTaskQueue)

    def __repr__(self) -> str:
        state = "listening" if self.listening else "stopped"
        return f"<StoreTaskReader {self.name} on {self.store!r} {state}>"

    # --- lifecycle ---------------------------------------------------------

    @property
    def listening(self) -> bool:
        """True while the claiming thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def listen(self) -> "StoreTaskReader":
        """Start claiming in a background (daemon) thread; returns self."""
        if self.listening:
            return self
        self._stop.clear()
        self._finisher = Finisher(self._finish_batch)
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"strand-reader-{self.name}")
        self._thread.start()
        _listening.add(self)
        log.debug("strand: reader %s started on %r: concurrency %d, prefetch %d", self.name,
                  self.store, self.concurrency, self.prefetch)
        if self._monitor is None:
            self._monitor = _lateral_progress.start(
                self._progress, lambda: (self.completed + self.failed, None), "strand", log)
        return self

    def stop(self, timeout: float | None = None) -> bool:
        """Stop claiming; wait (up to ``timeout`` seconds) for the running
        tasks to finish.  Returns True if the reader has ended."""
        timeout = _lateral.check_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        self._stop.set()
        self._slots.wake_all()
        wake: Callable[[], object] | None = getattr(self._queue, "wake_readers", None)
        if wake is not None and self.listening:
            wake()  # a reader blocked in the store looks at its stop event now
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        ended = (thread is None or not thread.is_alive()) and self._drain(deadline)
        if ended:
            _listening.discard(self)
            self._watch.close()
            if self._finisher is not None:
                self._finisher.close()
            self._forget()
            self._stopped()
        return ended

    def _stopped(self) -> None:
        """Report the end of listening (and a progress callback's error)."""
        monitor, self._monitor = self._monitor, None
        try:
            if monitor is not None:
                monitor.finish()
        finally:
            log.debug("strand: reader %s stopped (%d complete, %d failed)", self.name,
                      self.completed, self.failed)

    def _drain(self, deadline: float | None) -> bool:
        """Wait for the running tasks (up to ``deadline``); True if none is left."""
        timeout = None if deadline is None else deadline - time.monotonic()
        return self._slots.wait_for(lambda: not self._running, timeout)

    def __enter__(self) -> "StoreTaskReader":
        return self.listen()

    def __exit__(self, *exc_info: object) -> Literal[False]:
        self.stop()
        return False

    def _forget(self) -> None:
        forget: Callable[[str], object] | None = getattr(self._queue, "forget_reader", None)
        if forget is not None:
            try:
                forget(self.name)
            except Exception:
                log.debug("strand: could not remove reader %s from the store", self.name,
                          exc_info=True)

    def _loop(self) -> None:
        backoff = Backoff(self.poll_interval, self.max_reconnect_interval)
        idle = Backoff(self.poll_interval, self.max_poll_interval)
        while not self._stop.is_set():
            free = self._free_slots()
            if not free:
                continue
            try:
                claims = self._claim(free, idle)
                self._reached()
                backoff.reset()
            except self._connection_errors as exc:
                self._unreachable(exc)
                self._stop.wait(backoff.next())
                continue
            except Exception:
                log.exception("strand: reader %s could not claim from %r", self.name, self.store)
                self._stop.wait(backoff.next())
                continue
            if claims:
                self._start(claims)

    def _free_slots(self) -> int:
        """Wait until a slot is free (or the reader stops); the free count.
        A slot is a pool thread or a place in the pool's queue (``prefetch``):
        a task claimed ahead starts as soon as a thread is free."""
        capacity = self.concurrency + self.prefetch
        self._slots.wait_for(lambda: len(self._running) < capacity or self._stop.is_set())
        # Read after the wait, not under its lock: tasks may end (or
        # run_once() add one) meanwhile, and a stale count is only a hint.
        return 0 if self._stop.is_set() else max(0, capacity - len(self._running))

    def _claim(self, count: int, idle: Backoff) -> list[Claim]:
        claim_tasks: Callable[..., list[Claim]] | None = getattr(self._queue, "claim_tasks", None)
        if claim_tasks is not None:
            wait = min(self.max_poll_interval, _MAX_BLOCK)
            return claim_tasks(self.name, self.lease, count, wait=wait, stop=self._stop)
        # a store of the older protocol: one claim per call, polled
        claim = self._queue.claim_task(self.name, self.lease)
        if claim is not None:
            idle.reset()
            return [claim]
        self._stop.wait(idle.next())
        return []

    def _start(self, claims: Sequence[Claim]) -> None:
        """Run the claimed tasks: one batch of the reader's pool for all."""
        runnings = [self._register(claim) for claim in claims]
        pool = self._pool
        if pool is None or pool.closed or pool.forked:
            pool = self._pool = _lateral.Pool(self.concurrency, "strand-reader")
        pool.map(self._execute_claimed, runnings, unpack=False, stop_on_error=False)

    def _register(self, claim: Claim) -> Running:
        task_id, record, token = claim
        running = Running(task_id, record, token, _time_limit(record))
        self._slots.call(self._running.__setitem__, task_id, running)
        if self._renews:
            self._watch.start(deadline=False)
        return running

    def _execute_claimed(self, running: Running) -> None:
        """A pool thread's call for a task the listening reader claimed."""
        if self._stop.is_set() and self._give_back(running):
            self._release(running)  # claimed ahead, not started: another reader runs it
            return
        self._execute(running)

    def _execute(self, running: Running) -> None:
        running.begin()
        if running.deadline is not None:
            self._watch.start()  # the watch thread wakes for the new deadline
        fields: Record | None
        try:
            fields = self._run(running)
        except BaseException:
            log.exception("strand: reader %s failed on task %s", self.name, running.task_id)
            fields = None
        if fields is not None and running.settle():
            finisher = self._finisher
            alone = self._slots.call(len, self._running) <= 1
            if finisher is not None and finisher.put(running, fields, alone):
                return  # the finisher writes it, then releases the slot
            self._finish(running, fields)
        elif fields is not None:
            log.info("strand: task %s (%s) returned after its time limit; its outcome "
                     "was dropped", running.task_id, running.name)
        self._release(running)

    def _give_back(self, running: Running) -> bool:
        release_task: Callable[[str, str], bool] | None = getattr(self._queue, "release_task", None)
        if release_task is None:
            return False
        try:
            return release_task(running.task_id, running.token)
        except Exception as exc:  # then it runs here after all
            log.debug("strand: could not give task %s back: %s", running.task_id, exc)
            return False

    def _release(self, running: Running) -> None:
        self._slots.call(self._forget_running, running.task_id)
        if not self.listening:
            self._watch.close()

    def _finish_batch(self, batch: Sequence[tuple[Running, Record]]) -> None:
        """The finisher's call: write ``batch`` (``(running, fields)`` pairs)
        in one call of the store when it can, then release the slots."""
        try:
            finish_tasks: _FinishTasks | None = getattr(self._queue, "finish_tasks", None)
            if len(batch) > 1 and finish_tasks is not None:
                self._finish_together(finish_tasks, batch)
            else:
                for running, fields in batch:
                    self._finish(running, fields)
        finally:
            for running, _ in batch:
                self._release(running)

    def _finish_together(self, finish_tasks: "_FinishTasks",
                         batch: Sequence[tuple[Running, Record]]) -> None:
        outcomes = [(running.task_id, running.token, fields) for running, fields in batch]
        try:
            written = self._retried(lambda: finish_tasks(outcomes))
        except (TypeError, ValueError):  # a result the store cannot hold: one at a time
            for running, fields in batch:
                self._finish(running, fields)
            return
        if written is None:
            for running, _ in batch:
                self._stopped_before_writing(running)
            return
        for (running, fields), done in zip(batch, written):
            self._written(running, fields, done)

    def running_tasks(self) -> list[Running]:
        """The tasks this reader runs now (a list of ``Running``)."""
        return self._slots.call(list, self._running.values())

    def _forget_running(self, task_id: str) -> None:
        """Contract: _slots held."""
        self._running.pop(task_id, None)
        self._slots.notify_all()

    # --- an unreachable store ----------------------------------------------

    # The outage lock is taken in C (locked_call): run_pending() writes
    # outcomes in the program's thread, where Ctrl-C lands.

    def _unreachable(self, exc: BaseException) -> None:
        if not _lateral.locked_call(self._outage_lock, self._outage_began):
            return
        log.warning("strand: reader %s cannot reach %r (%s: %s); retrying every %g s "
                    "at most", self.name, self.store, type(exc).__name__, exc,
                    self.max_reconnect_interval)

    def _outage_began(self) -> bool:
        """True if the store was reachable until now.  Contract: _outage_lock held."""
        if self._unreachable_since is not None:
            return False
        self._unreachable_since = time.monotonic()
        return True

    def _reached(self) -> None:
        since = _lateral.locked_call(self._outage_lock, self._outage_ended)
        if since is not None:
            log.warning("strand: reader %s reached %r again after %.1f s", self.name,
                        self.store, time.monotonic() - since)

    def _outage_ended(self) -> float | None:
        """When the outage began, or None.  Contract: _outage_lock held."""
        since, self._unreachable_since = self._unreachable_since, None
        return since

    # --- running tasks -----------------------------------------------------

    def run_once(self) -> bool:
        """Claim one task, run it in this thread and write its outcome;
        False if none was waiting."""
        claim = self._queue.claim_task(self.name, self.lease)
        if claim is None:
            return False
        self._execute(self._register(claim))
        return True

    def run_pending(self, limit: int | None = None) -> int:
        """Run waiting tasks until there are none (or ``limit`` ran); the count."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise TypeError(f"run_pending's limit must be an int or None, got {limit!r}")
        if limit is not None and limit < 0:
            raise ValueError(f"run_pending's limit must be at least 0, got {limit!r}")
        count = 0
        while (limit is None or count < limit) and self.run_once():
            count += 1
        return count

    def _run(self, running: Running) -> Record:
        task_id, record = running.task_id, running.record
        try:
            func = self._resolve(task_id, record)
            args, kwargs = self._arguments(record, func)
            _job_options(record)
        except Exception as exc:  # a malformed record is refused, whatever it broke
            reason = str(exc) if isinstance(exc, TaskRefused) else \
                f"the record could not be read: {type(exc).__name__}: {exc}"
            log.warning("strand: reader %s refused task %s: %s", self.name, task_id, reason)
            return error_fields("TaskRefused", reason, f"TaskRefused: {reason}\n")
        try:
            if record.get("run_in") == "process":
                result = self._run_in_process(running, func, args, kwargs)
            else:
                result = func(*args, **kwargs)
            if is_one_shot(result):
                result = list(result)  # a generator cannot be stored; its items can
            fields: Record = {**status_fields(COMPLETE), "finished": time.time(),
                      **self._encode_result(task_id, record, result)}
        except Exception as exc:
            return self._failure(running, exc)
        return self._expiring(record, self._counted(record, fields))

    def _run_in_process(self, running: Running, func: Callable[..., Any], args: list[Any],
                        kwargs: dict[str, Any]) -> Any:
        from .process import MultiprocessTaskrunner
        # not fork: the reader has threads (a lock one of them holds would
        # stay held in the child); the forkserver forks from a clean process
        handle = MultiprocessTaskrunner(func, mp_context=_PROCESS_START)(*args, **kwargs)
        running.process = handle
        if running.timed_out:  # the limit passed while the child started
            handle.process.kill()
        return handle.result()

    def _failure(self, running: Running, exc: Exception) -> Record:
        """The outcome of a failed run: queued again while retries are left."""
        record = running.record
        retries, delay = _job_options(record)[:2]
        failures = _count(record.get("failures")) + 1
        trace = traceback.format_exc()
        if failures <= retries and not running.timed_out:  # a timed-out task is not retried
            wait = delay * 2 ** (failures - 1)
            log.warning("strand: task %s (%s) failed (%s: %s); retry %d of %d in %g s",
                        running.task_id, running.name, type(exc).__qualname__, exc,
                        failures, retries, wait)
            now = time.time()
            return {**status_fields(NEW), "failed_at": now, "eta": now + wait,
                    "failures": failures,
                    "last_error_type": type(exc).__qualname__, "last_error_message": str(exc),
                    "last_error": trace}
        fields = {**error_fields(type(exc).__qualname__, str(exc), trace), "failures": failures}
        return self._expiring(record, fields)

    @staticmethod
    def _counted(record: Mapping[str, Any], fields: Record) -> Record:
        """A success after failures keeps their count and the last error."""
        if not _count(record.get("failures")):
            return fields
        return {**fields, **{name: record.get(name) for name in _RETRY_FIELDS}}

    @staticmethod
    def _expiring(record: Mapping[str, Any], fields: Record) -> Record:
        ttl = _job_options(record)[3]
        return fields if ttl is None else {**fields, "expires": fields["finished"] + ttl}

    def time_out(self, running: Running) -> None:
        """``running`` outlived its time limit: mark it ``error`` now (a
        process task is killed; a thread cannot be stopped from outside, so
        it is left to return, and what it returns is dropped)."""
        running.timed_out = True
        if running.process is not None:
            running.process.process.kill()
        if not running.settle():
            return
        how = "its process was killed" if running.process is not None else \
            "its thread was left to finish; its outcome will be dropped"
        message = f"the task ran longer than its time_limit of {running.time_limit:g} s ({how})"
        fields = self._expiring(running.record, error_fields(TIME_LIMIT, message,
                                                       f"{TIME_LIMIT}: {message}\n"))
        threading.Thread(target=self._finish, args=(running, fields), daemon=True,
                         name=f"strand-timeout-{running.task_id}").start()

    def renew_claims(self) -> None:
        """Renew the leases of every running task (the watch thread calls it)."""
        running = {task.task_id: task for task in self.running_tasks() if not task.timed_out}
        if not self._renews or not running:
            return
        claims = [(task_id, task.token) for task_id, task in running.items()]
        try:
            renew_tasks: Callable[..., list[str]] | None = getattr(self._queue, "renew_tasks",
                                                                  None)
            if renew_tasks is not None:
                lost = renew_tasks(claims, self.lease, reader=self.name)
            else:
                lost = [task_id for task_id, token in claims
                        if not self._queue.renew_task(task_id, token, self.lease)]
        except self._connection_errors as exc:  # the reader reports the outage itself
            log.debug("strand: could not renew the claims of reader %s: %s", self.name, exc)
            return
        except Exception:
            log.exception("strand: could not renew the claims of reader %s", self.name)
            return
        for task_id in lost:
            task = running[task_id]
            if not task.settled and task in self.running_tasks():  # not ended meanwhile
                log.warning("strand: the claim on task %s was lost", task_id)

    def _finish(self, running: Running, fields: Record) -> None:
        outcome = self._retried(lambda: self._finish_task(running, fields))
        if outcome is None:
            self._stopped_before_writing(running)
        else:
            self._written(running, outcome[1], outcome[0])

    def _stopped_before_writing(self, running: Running) -> None:
        log.warning("strand: reader %s stopped before it could write the outcome of task "
                    "%s (the store is unreachable); the task will run again after its "
                    "lease", self.name, running.task_id)

    def _written(self, running: Running, fields: Mapping[str, Any], written: bool) -> None:
        if not written:
            log.warning("strand: reader %s lost its claim on task %s (its lease expired); "
                        "its outcome was not written", self.name, running.task_id)
        else:
            self._log_outcome(running, fields)

    def _log_outcome(self, running: Running, fields: Mapping[str, Any]) -> None:
        status = fields["status"]
        if status == COMPLETE:
            self.completed += 1
            started = cast(float, running.started)  # a complete task began
            log.info("strand: task %s (%s) complete in %.1f ms (attempt %s)", running.task_id,
                     running.name, (time.monotonic() - started) * 1000,
                     running.record.get("attempts", 1))
        elif status != NEW:
            self.failed += 1
            if fields.get("error_type") not in ("TaskRefused", TIME_LIMIT):  # logged already
                log.warning("strand: task %s (%s) failed: %s: %s", running.task_id,
                            running.name, fields.get("error_type"),
                            fields.get("error_message"))
            elif fields.get("error_type") == TIME_LIMIT:
                log.warning("strand: task %s (%s) marked error: %s", running.task_id,
                            running.name, fields.get("error_message"))

    def _retried(self, write: Callable[[], _T]) -> _T | None:
        """``write()``, tried again while the store is unreachable (a repeated
        finish is harmless); None if the reader was stopped first."""
        backoff = Backoff(self.poll_interval, self.max_reconnect_interval)
        while True:
            try:
                outcome = write()
            except self._connection_errors as exc:
                self._unreachable(exc)
                if self._stop.wait(backoff.next()):
                    return None
            else:
                self._reached()
                return outcome

    def _finish_task(self, running: Running, fields: Record) -> tuple[bool, Record]:
        task_id, token = running.task_id, running.token
        try:
            return self._queue.finish_task(task_id, token, fields), fields
        except (TypeError, ValueError) as exc:  # the result could not be encoded
            fields = self._expiring(running.record, error_fields(
                type(exc).__qualname__, f"the result could not be stored: {exc}",
                traceback.format_exc()))
            return self._queue.finish_task(task_id, token, fields), fields

    def _encode_result(self, task_id: str, record: Mapping[str, Any], result: Any) -> Record:
        serializer = self._serializer(record.get("serializer"))
        if serializer is None:
            return {"result": result}
        data = serializer.dumps(result)
        fields: Record = {"result": data}
        if self._key is not None:
            fields["result_signature"] = result_signature(self._key, task_id, data)
        return fields


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@overload
def _number(record: Mapping[str, Any], name: str, default: float) -> float:
    ...


@overload
def _number(record: Mapping[str, Any], name: str, default: None = None) -> float | None:
    ...


def _number(record: Mapping[str, Any], name: str, default: float | None = None) -> float | None:
    value = record.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise TaskRefused(f"the record's {name} must be a number >= 0, got {value!r}")
    return value


def _job_options(record: Mapping[str, Any]) -> tuple[int, float, float | None, float | None]:
    """``(retries, retry_delay, time_limit, result_ttl)`` of a record."""
    retries = _number(record, "retries", 0)
    if retries != int(retries):
        raise TaskRefused(f"the record's retries must be an int, got {retries!r}")
    return (int(retries), _number(record, "retry_delay", 1.0), _number(record, "time_limit"),
            _number(record, "result_ttl"))


def _prefetch(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"prefetch must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"prefetch must be at least 0, got {value!r}")
    return value


def _time_limit(record: Mapping[str, Any]) -> float | None:
    try:
        return _job_options(record)[2]
    except TaskRefused:
        return None  # refused when it runs


@overload
def _positive(value: float, what: str, allow_none: Literal[False] = False) -> float:
    ...


@overload
def _positive(value: float | None, what: str, allow_none: bool) -> float | None:
    ...


def _positive(value: float | None, what: str, allow_none: bool = False) -> float | None:
    """``value`` as float seconds: positive and short enough for
    ``Event.wait`` (a longer one would kill the listening thread)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, got {value!r}")
    if not 0 < value <= threading.TIMEOUT_MAX:
        raise ValueError(f"{what} must be a positive number of seconds up to "
                         f"{threading.TIMEOUT_MAX:g}, got {value!r}")
    return float(value)


__all__ = ["StoreTaskReader", "TaskRefused", "TIME_LIMIT", "verify_record"]


@atexit.register
def _stop_readers() -> None:
    readers = list(_listening)
    for reader in readers:
        reader._stop.set()
    for reader in readers:
        reader.stop(timeout=1.0)
