"""StoreTaskWriter: writes task records to a store for a reader to run."""
import collections.abc
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import _lateral_sync

from ._util import func_name, qualified_name
from .base import Taskrunner, unwrap
from .handles import COMPLETE, ERROR, NEW, CancelledTask, Handle, status_fields
from .registry import registry
from .serialization import Serializer, get_serializer, secret_key, sign, verify
from .stores import SAFETY_INTERVAL, mapping_changed, open_store, outcome_waiter, task_queue
from .stores._records import Record
from .stores._waiting import Subscriptions

if TYPE_CHECKING:
    from .reader import StoreTaskReader

log = logging.getLogger("strand")
_R = TypeVar("_R")
_F = TypeVar("_F")

#: The record fields covered by a task's HMAC signature.
SIGNED_FIELDS = ("id", "name", "qualname", "func", "func_serializer", "init_args",
                 "init_kwargs", "args", "kwargs", "serializer", "run_in", "retries",
                 "retry_delay", "time_limit", "result_ttl")

#: The job options a writer (or one ``submit``) puts in its records.
JOB_OPTIONS = ("retries", "retry_delay", "time_limit", "result_ttl")

#: Where a reader runs a task: ``run_in='thread'`` (a pool thread) or ``'process'``.
RUN_IN = ("thread", "process")


class StoreTaskError(Exception):
    """A store task ended with status ``error``: ``task_id``, ``error_type``
    (the exception's class name, or ``TaskRefused``) and ``trace`` (the
    reader's traceback or its reason for refusing the task)."""

    def __init__(self, task_id: str, record: Mapping[str, Any]) -> None:
        self.task_id = task_id
        self.error_type = record.get("error_type")
        self.trace = record.get("error", "")
        message = record.get("error_message") or (self.trace.strip().splitlines() or [""])[-1]
        super().__init__(f"task {task_id} ({record.get('name')}) failed: "
                         f"{self.error_type}: {message}")


class SignatureError(Exception):
    """A signed payload did not match its HMAC signature."""


def record_signature(key: bytes, record: Mapping[str, Any]) -> str:
    """The HMAC signature of a task record's :data:`SIGNED_FIELDS`."""
    return sign(key, {name: record.get(name) for name in SIGNED_FIELDS})


def result_signature(key: bytes, task_id: str, result: object) -> str:
    """The HMAC signature of a serialized result."""
    return sign(key, {"id": task_id, "result": result})


class StoreTaskWriter(Taskrunner[_R]):
    """When called, writes a task record for ``func`` and the arguments to
    ``store`` (any MutableMapping, a ``SqliteStore``/``RedisStore``, an
    SQLite file path or a ``redis://`` URL) and returns a :class:`StoreTask`.
    ``writer(*args, task_id='key', **kwargs)`` names the record's key
    (default: a new uuid4 hex); a record of that key is replaced.
    ``store=None`` leaves the store to be set later (``writer.store = ...``),
    before the first call.

    The record holds the published strand writer's fields -- ``name``,
    ``func``, ``init_args``, ``init_kwargs``, ``args``, ``kwargs`` (the
    call's own), ``start_time`` (ms) and ``task_status`` -- and lateral's:
    ``id``, ``qualname``, ``status`` (the same as ``task_status``: ``new``,
    then ``running``, ``complete`` or ``error``), ``time`` (s) and the
    serialization fields.  With ``pickle_func``, ``func`` is the function
    serialized with dill (``pickle_func=True``; cloudpickle where dill
    fails) or the serializer named, whose name is in ``func_serializer``.
    ``serializer`` (``'pickle'``, ``'dill'``, ``'json'`` or a
    :class:`strand.Serializer`) packs the arguments and result as bytes;
    without it they are stored as they are.  ``secret`` signs each record
    (HMAC-SHA256) so that a reader sharing the secret may load pickled
    payloads; pickled arguments require it.

    ``read_store`` starts a :class:`StoreTaskReader` on that store, with the
    writer's secret and ``reader_kwargs``.  ``get_result(task_id)`` replaces
    reading the result from the record.  The callbacks run in a watcher
    thread of this process when a task's outcome is written back.

    The function is registered with :data:`strand.registry`, so readers of
    this process resolve it by name.  Safety check: a lambda without
    ``pickle_func`` is refused (no reader could find it by name).
    """

    def __init__(self, func: Callable[..., _R], store: Any = None, *init_args: Any,
                 read_store: Any = None, pickle_func: bool | str = False,
                 get_result: Callable[[str], Any] | None = None,
                 serializer: Any = None, secret: str | bytes | None = None,
                 reader_kwargs: Mapping[str, Any] | None = None, retries: int = 0,
                 retry_delay: float = 1.0, time_limit: float | None = None,
                 result_ttl: float | None = None, run_in: str = "thread",
                 on_iter: Callable[[Any], object] | None = None,
                 on_end: Callable[[_R], object] | None = None,
                 on_error: Callable[[Exception], object] | None = None,
                 safety_checks: bool = True, **init_kwargs: Any) -> None:
        super().__init__(func, *init_args, on_iter=on_iter, on_end=on_end, on_error=on_error,
                         safety_checks=safety_checks, **init_kwargs)
        self.options = _job_options(retries=retries, retry_delay=retry_delay,
                                    time_limit=time_limit, result_ttl=result_ttl)
        if run_in not in RUN_IN:
            raise ValueError(f"run_in must be one of {RUN_IN}, got {run_in!r}")
        self.run_in = run_in
        if reader_kwargs is not None and not isinstance(reader_kwargs, collections.abc.Mapping):
            raise TypeError(f"reader_kwargs must be a dict of StoreTaskReader arguments, "
                            f"got {reader_kwargs!r}")
        self.store = store
        self.get_result = get_result if get_result is None else _callable(get_result)
        self.func_serializer = _func_serializer(pickle_func)
        self._func_fallback = get_serializer("cloudpickle") if pickle_func is True else None
        self.serializer = get_serializer(serializer)
        self._key = secret_key(secret)
        self._check_config()
        registry.register(self.func)
        self.task_id: str | None = None
        self._watcher = _CallbackWatcher(self)
        self.reader: StoreTaskReader | None = None
        if read_store is not None:
            from .reader import StoreTaskReader
            self.reader = StoreTaskReader(read_store, secret=secret,
                                          **(reader_kwargs or {})).listen()

    def _check_config(self) -> None:
        if self.serializer is not None and not self.serializer.trusted and self._key is None:
            raise ValueError(f"serializer={self.serializer.name!r} needs secret=: readers load "
                             "pickled arguments only when they are signed")
        if (self.safety_checks and self.func_serializer is None
                and func_name(unwrap(self.func)) == "<lambda>"):
            raise ValueError("a lambda has no name a reader could find it by; use a named "
                             "function or pickle_func=True (or safety_checks=False)")

    @property
    def store(self) -> MutableMapping[str, Any] | None:
        """The store the records go to (None until set)."""
        return self._store

    @store.setter
    def store(self, store: Any) -> None:
        self._store = None if store is None else open_store(store)

    def __call__(self, *args: Any, task_id: str | None = None,
                 **kwargs: Any) -> "StoreTask[_R]":
        try:
            return self._submit(args, kwargs, task_id)
        except Exception as exc:
            return self._handle_error(exc)  # type: ignore[return-value]  # None once on_error had it

    def submit(self, args: tuple[Any, ...] | list[Any] = (),
               kwargs: Mapping[str, Any] | None = None, *, task_id: str | None = None,
               delay: float | None = None, eta: float | None = None,
               **options: Any) -> "StoreTask[_R]":
        """Write one task, as ``writer(*args, **kwargs)`` does, with options
        of its own: ``delay`` (seconds from now) or ``eta`` (epoch seconds)
        before which no reader runs it, and ``retries``, ``retry_delay``,
        ``time_limit``, ``result_ttl`` in place of the writer's.  Returns
        the :class:`StoreTask` (errors go to ``on_error`` as for a call)."""
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"submit's args must be a tuple or a list, got {args!r}")
        if kwargs is not None and not isinstance(kwargs, collections.abc.Mapping):
            raise TypeError(f"submit's kwargs must be a dict, got {kwargs!r}")
        unknown = sorted(set(options) - set(JOB_OPTIONS))
        if unknown:
            raise TypeError(f"submit() got unknown options {unknown}; the options are "
                            f"task_id, delay, eta and {', '.join(JOB_OPTIONS)}")
        extra = {**self.options, **_job_options(**options), **_eta(delay, eta)}
        try:
            return self._submit(tuple(args), dict(kwargs or {}), task_id, extra)
        except Exception as exc:
            return self._handle_error(exc)  # type: ignore[return-value]  # None once on_error had it

    def _submit(self, args: tuple[Any, ...], kwargs: dict[str, Any], task_id: str | None = None,
                extra: Mapping[str, Any] | None = None) -> "StoreTask[_R]":
        if self._store is None:
            raise ValueError(f"{self!r} has no store yet: set writer.store (a mapping, an "
                             "SQLite path or a redis:// URL) before calling it")
        self._merged(args, kwargs)  # the TypeError a call would raise, raised now
        task_id = uuid.uuid4().hex if task_id is None else _task_id(task_id)
        record = self.make_record(task_id, args, kwargs, extra)
        self._store[task_id] = record
        if not hasattr(self._store, "claim_tasks"):  # a plain mapping: wake this process's readers
            mapping_changed()
        self.task_id = task_id
        task = StoreTask(self, task_id)
        if self.on_iter or self.on_end or self.on_error:
            self._watcher.add(task)
        return task

    def make_record(self, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any],
                    extra: Mapping[str, Any] | None = None) -> Record:
        """The record a call ``writer(*args, **kwargs)`` writes (public so
        other producers can match it); the writer's init arguments go to
        ``init_args`` and ``init_kwargs``; ``extra`` (job options, ``eta``)
        defaults to the writer's options."""
        func = unwrap(self.func)
        arguments = {"init_args": list(self.init_args), "init_kwargs": dict(self.init_kwargs),
                     "args": list(args), "kwargs": dict(kwargs)}
        record: Record = {"id": task_id, "name": func_name(func), "qualname": qualified_name(func),
                  "func": None, "func_serializer": None, **arguments, "serializer": None}
        record.update(self.options if extra is None else extra)
        if self.run_in != "thread":
            record["run_in"] = self.run_in
        if self.func_serializer is not None:
            record["func"], record["func_serializer"] = self._pickled_function(func)
        if self.serializer is not None:
            record.update({name: self.serializer.dumps(value)
                           for name, value in arguments.items()})
            record["serializer"] = self.serializer.name
        record["signature"] = None if self._key is None else record_signature(self._key, record)
        now = time.time()
        record.update(status_fields(NEW), time=now, start_time=int(now * 1000))
        return record

    def _pickled_function(self, func: Callable[..., Any]) -> tuple[Any, str]:
        """(bytes, serializer name).  dill 0.4 cannot pickle a function's code
        on Python 3.15 ('co_lnotab' is gone), so pickle_func=True falls back
        to cloudpickle where dill fails."""
        try:
            serializer = cast(Serializer, self.func_serializer)  # pickle_func was given
            return serializer.dumps(func), serializer.name
        except Exception as exc:
            if self._func_fallback is None:
                raise
            first = exc
        try:
            return self._func_fallback.dumps(func), self._func_fallback.name
        except Exception as exc:
            raise TypeError(f"{func_name(func)}() cannot be pickled: dill failed with "
                            f"{first!r}, cloudpickle with {exc!r}") from exc

    @property
    def result(self) -> _R | None:
        """The result of the last task written: None until it is complete;
        raises :class:`StoreTaskError` if it failed."""
        if self.task_id is None:
            return None
        task = StoreTask(self, self.task_id)
        return task.result(0) if task.done() else None

    @property
    def status(self) -> str | None:
        """The status of the last task written (None before any)."""
        return None if self.task_id is None else StoreTask(self, self.task_id).status

    def close(self, timeout: float | None = None) -> None:
        """Stop the reader started by ``read_store`` (if any)."""
        if self.reader is not None:
            self.reader.stop(timeout)

    def decode_result(self, task_id: str, record: Mapping[str, Any]) -> Any:
        """The result stored in ``record``, unpacked with the writer's
        serializer (a pickled result must carry a valid signature)."""
        if self.get_result is not None:
            return self.get_result(task_id)
        value = record.get("result")
        if self.serializer is None or value is None:
            return value
        if not self.serializer.trusted:
            signature = record.get("result_signature")
            key = cast(bytes, self._key)  # an untrusted serializer needs secret=
            if not verify(key, {"id": task_id, "result": value}, signature):
                raise SignatureError(f"the result of task {task_id} does not match its "
                                     "signature; it was not loaded")
        return self.serializer.loads(value)


class StoreTask(Handle[_R]):
    """The handle of one task written to a store: ``id``, ``record``,
    ``status`` (read from the store), ``done()``, ``join(timeout)``,
    ``result(timeout)`` (waits; raises :class:`StoreTaskError` if the task
    failed) and ``exception(timeout)``, ``cancel()`` and ``cancelled()``.
    Waiting does not poll: the reader that writes the outcome wakes the
    waiters (Redis publishes it; SQLite sends a datagram; a dict's readers
    are in this process); the record is looked at again every
    ``SAFETY_INTERVAL`` (1 s) in case a wake-up was lost."""

    def __init__(self, writer: StoreTaskWriter[_R], task_id: str) -> None:
        self.writer = writer
        self.id = task_id
        self.name = f"task {task_id} ({writer.name})"
        self._finished: dict[str, Any] | None = None  # what done() saw last, for _outcome

    def _store(self) -> MutableMapping[str, Any]:
        return cast(MutableMapping[str, Any], self.writer.store)  # a task has a store

    @property
    def record(self) -> dict[str, Any]:
        """The task's current record in the store."""
        try:
            record: dict[str, Any] = self._store()[self.id]
            return record
        except KeyError:
            raise LookupError(f"task {self.id} is no longer in the store") from None

    @property
    def status(self) -> str:
        """``new``, ``running``, ``complete`` or ``error``."""
        return cast(str, self.record.get("status"))

    def done(self) -> bool:
        """True once a reader wrote the outcome back (or it was cancelled)."""
        record = self.record
        if record.get("status") not in (COMPLETE, ERROR):
            return False
        # result() reads the outcome from it: one read of the store less
        # (a round trip, with Redis) between the wake-up and the result
        self._finished = record
        return True

    def cancel(self) -> bool:
        """Cancel the task if no reader claimed it yet: it is marked
        ``error`` (``error_type`` ``TaskCancelled``) and never runs.  True
        if it was cancelled, False if a reader already has it."""
        cancel_task: Callable[[str], bool] | None = getattr(task_queue(self._store()),
                                                           "cancel_task", None)
        if cancel_task is None:
            raise NotImplementedError(f"{self.writer.store!r} cannot cancel tasks "
                                      "(it has no cancel_task)")
        return cancel_task(self.id)

    def cancelled(self) -> bool:
        """True if :meth:`cancel` stopped the task before it ran."""
        record = self.record
        return record.get("status") == ERROR and record.get("error_type") == "TaskCancelled"

    def _wait(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        waiter = outcome_waiter(self._store())
        event = waiter.subscribe(self.id)
        try:
            while not self.done():
                remaining = SAFETY_INTERVAL if deadline is None else \
                    min(SAFETY_INTERVAL, deadline - time.monotonic())
                if remaining <= 0:
                    return False
                event.wait(remaining)
                event.clear()
            return True
        finally:
            waiter.unsubscribe(self.id, event)

    async def _until_done(self) -> None:
        # The waiter's event is set by another thread: a thread of strand's
        # pool waits on it (a second at a time, so that a cancelled await
        # does not hold the thread), and the event loop awaits that call.
        from .threads import submit_to_pool
        while not await submit_to_pool(self._wait, (SAFETY_INTERVAL,), self.name):
            pass

    def _outcome(self) -> tuple[_R | None, BaseException | None]:
        record, self._finished = self._finished, None
        if record is None:
            record = self.record
        if record.get("status") == ERROR:
            if record.get("error_type") == "TaskCancelled":
                return None, CancelledTask(f"{self.name} was cancelled before it ran")
            return None, StoreTaskError(self.id, record)
        return self.writer.decode_result(self.id, record), None


class _CallbackWatcher:
    """One thread per writer, alive while tasks with callbacks are pending:
    woken by the store when an outcome is written, it runs the callbacks of
    each task that is done."""

    def __init__(self, writer: StoreTaskWriter[Any]) -> None:
        self._writer = writer
        self._pending: list[tuple[StoreTask[Any], Subscriptions, threading.Event]] = []
        # A Guard: add() runs in the program's thread, where Ctrl-C lands.
        self._guard = _lateral_sync.Guard()
        self._thread: threading.Thread | None = None
        self._event = threading.Event()

    def add(self, task: StoreTask[Any]) -> None:
        waiter = outcome_waiter(task._store())  # the writer's store
        self._guard.call(self._add, task, waiter)

    def _add(self, task: StoreTask[Any], waiter: Subscriptions) -> None:
        """Contract: _guard held."""
        self._pending.append((task, waiter, waiter.subscribe(task.id, self._event)))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"strand-watch-{self._writer.name}")
            self._thread.start()

    def _run(self) -> None:
        while (pending := self._guard.call(self._still_pending)):
            finished = [entry for entry in pending if self._finished(entry[0])]
            self._guard.call(self._forget, finished)
            for task, waiter, event in finished:
                waiter.unsubscribe(task.id, event)
                self._deliver(task)
            if not finished:
                self._event.wait(SAFETY_INTERVAL)
                self._event.clear()

    def _still_pending(self) -> list[tuple[StoreTask[Any], Subscriptions, threading.Event]]:
        """A copy of the pending tasks; empty ends the thread, which the next
        add() then starts again.  Contract: _guard held."""
        if not self._pending:
            self._thread = None
        return list(self._pending)

    def _forget(self, finished: list[tuple[StoreTask[Any], Subscriptions, threading.Event]],
                ) -> None:
        """Contract: _guard held."""
        for entry in finished:
            self._pending.remove(entry)

    @staticmethod
    def _finished(task: StoreTask[Any]) -> bool:
        try:
            return task.done()
        except Exception:  # the store is unreachable, say: try again later
            log.exception("strand: could not read the status of %s", task.name)
            return False

    def _deliver(self, task: StoreTask[Any]) -> None:
        writer = self._writer
        try:
            writer._deliver(task.result(0))
        except Exception as exc:
            try:
                writer._handle_error(exc)
            except Exception:
                log.exception("strand: %s failed and the writer has no on_error", task.name)


def _job_options(**options: Any) -> dict[str, float]:
    """The job options given (not None), checked: ``retries`` an int >= 0,
    the others seconds >= 0."""
    checked: dict[str, float] = {}
    for name, value in options.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise (TypeError if not isinstance(value, (int, float)) or isinstance(value, bool)
                   else ValueError)(f"{name} must be a number >= 0, got {value!r}")
        if name == "retries" and not isinstance(value, int):
            raise TypeError(f"retries must be an int, got {value!r}")
        if name == "retries" and value == 0 or name == "retry_delay" and value == 1.0:
            continue  # the defaults are not written
        checked[name] = value
    return checked


def _eta(delay: float | None, eta: Any) -> dict[str, float]:
    if delay is not None and eta is not None:
        raise TypeError("give delay= or eta=, not both")
    if delay is not None:
        return {"eta": time.time() + _job_options(delay=delay).get("delay", 0)}
    if eta is None:
        return {}
    if hasattr(eta, "timestamp"):  # a datetime
        eta = eta.timestamp()
    if isinstance(eta, bool) or not isinstance(eta, (int, float)):
        raise TypeError(f"eta must be epoch seconds or a datetime, got {eta!r}")
    return {"eta": float(eta)}


def _task_id(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"task_id must be a non-empty str, got {value!r}")
    return value


def _callable(value: _F) -> _F:
    if not callable(value):
        raise TypeError(f"get_result must be callable, got {value!r}")
    return value


def _func_serializer(pickle_func: bool | str | Serializer | None) -> Serializer | None:
    if pickle_func is False or pickle_func is None:
        return None
    if pickle_func is True:
        return get_serializer("dill")
    return get_serializer(pickle_func)
