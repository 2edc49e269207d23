"""StoreTaskReader: claims tasks from a store, runs them, writes the outcome."""
import atexit
import logging
import os
import socket
import threading
import time
import traceback
import uuid
import weakref

import _lateral

from ._util import is_one_shot, merge_kwargs, optional_callable
from .base import unwrap
from .handles import COMPLETE, ERROR, status_fields
from .registry import TaskRegistry, registry
from .serialization import get_serializer, secret_key, verify
from .stores import open_store, task_queue
from .stores.mapping import MappingTaskQueue
from .writer import SIGNED_FIELDS, result_signature

log = logging.getLogger("strand")

_listening = weakref.WeakSet()


class TaskRefused(Exception):
    """A reader would not run a task (unknown function, missing or wrong
    signature...); the task is marked ``error`` with this reason."""


class StoreTaskReader:
    """Runs the tasks written to ``store`` (see ``StoreTaskWriter``).

    A task's function is resolved, in order, by ``get_task_func(record)``,
    by name in ``functions`` (a mapping of names to functions, an iterable
    of functions or a :class:`TaskRegistry`; default :data:`strand.registry`),
    and last from the record's pickled ``func`` -- only when the reader has
    ``secret`` and the record's HMAC signature matches it.  A reader never
    runs code it was not given by its own process: any other task, and any
    record whose signature does not match, is marked ``error`` with the
    reason and nothing runs.  ``require_signature=True`` refuses unsigned
    records too.

    ``listen()`` starts a background thread that polls the store (backing
    off from ``poll_interval`` to ``max_poll_interval`` while idle), claims
    each task exactly once among all readers, runs it and writes ``status``
    (``running``, then ``complete`` or ``error``), ``result`` or ``error``
    (the traceback) back.  ``stop()`` ends it.  Tasks run one at a time per
    reader; use several readers for more.  ``lease``: seconds a claim on a
    Sqlite or Redis store lasts without renewal (renewed while the task
    runs); a task whose reader died runs again after it.

    While the store cannot be reached (a Redis server restarts: the errors
    in the store's ``connection_errors``) the listening reader keeps trying,
    backing off from ``poll_interval`` to ``max_reconnect_interval``, and
    logs one warning when the store goes away and one when it is back.  The
    outcome of a task that ended meanwhile is written once the store is back
    (unless the reader is stopped first: the task then runs again after its
    lease).
    """

    def __init__(self, store, get_task_func=None, *, functions=None, secret=None,
                 require_signature=False, lease=30.0, poll_interval=0.01,
                 max_poll_interval=0.5, max_reconnect_interval=2.0, name=None):
        self.store = open_store(store)
        self._queue = task_queue(self.store)
        self.get_task_func = optional_callable(get_task_func, "get_task_func")
        self.functions = registry if functions is None else TaskRegistry(functions)
        self._key = secret_key(secret)
        self.require_signature = bool(require_signature)
        if self.require_signature and self._key is None:
            raise ValueError("require_signature=True needs secret=")
        self.lease = _positive(lease, "lease", allow_none=True)
        self.poll_interval = _positive(poll_interval, "poll_interval")
        self.max_poll_interval = max(self.poll_interval,
                                     _positive(max_poll_interval, "max_poll_interval"))
        self.max_reconnect_interval = max(
            self.max_poll_interval, _positive(max_reconnect_interval, "max_reconnect_interval"))
        self._connection_errors = tuple(getattr(self._queue, "connection_errors", ()))
        self._unreachable_since = None
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.completed = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = None

    def __repr__(self):
        state = "listening" if self.listening else "stopped"
        return f"<StoreTaskReader {self.name} on {self.store!r} {state}>"

    # --- lifecycle ---------------------------------------------------------

    @property
    def listening(self):
        """True while the polling thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def listen(self):
        """Start polling the store in a background (daemon) thread; returns self."""
        if self.listening:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"strand-reader-{self.name}")
        self._thread.start()
        _listening.add(self)
        return self

    def stop(self, timeout=None):
        """Stop polling; waits (up to ``timeout`` seconds) for the task being
        run to finish.  Returns True if the thread has ended."""
        timeout = _lateral.check_timeout(timeout)
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        ended = thread is None or not thread.is_alive()
        if ended:
            _listening.discard(self)
            self._forget()
        return ended

    def __enter__(self):
        return self.listen()

    def __exit__(self, *exc_info):
        self.stop()
        return False

    def _forget(self):
        forget = getattr(self._queue, "forget_reader", None)
        if forget is not None:
            try:
                forget(self.name)
            except Exception:
                log.debug("strand: could not remove reader %s from the store", self.name,
                          exc_info=True)

    def _loop(self):
        interval = self.poll_interval
        while not self._stop.is_set():
            ceiling = self.max_poll_interval
            try:
                claimed = self.run_once()
                self._reached()
            except self._connection_errors as exc:
                self._unreachable(exc)
                claimed, ceiling = False, self.max_reconnect_interval
            except Exception:
                log.exception("strand: reader %s could not poll %r", self.name, self.store)
                claimed = False
            if claimed:
                interval = self.poll_interval
                continue
            self._stop.wait(interval)
            interval = min(interval * 2, ceiling)

    # --- an unreachable store ----------------------------------------------

    def _unreachable(self, exc):
        if self._unreachable_since is None:
            self._unreachable_since = time.monotonic()
            log.warning("strand: reader %s cannot reach %r (%s: %s); retrying every %g s "
                        "at most", self.name, self.store, type(exc).__name__, exc,
                        self.max_reconnect_interval)

    def _reached(self):
        since = self._unreachable_since
        if since is not None:
            self._unreachable_since = None
            log.warning("strand: reader %s reached %r again after %.1f s", self.name,
                        self.store, time.monotonic() - since)

    # --- running tasks -----------------------------------------------------

    def run_once(self):
        """Claim one task, run it and write its outcome; False if none was waiting."""
        claim = self._queue.claim_task(self.name, self.lease)
        if claim is None:
            return False
        task_id, record, token = claim
        with _Heartbeat(self._queue, task_id, token, self.lease, self._connection_errors):
            fields = self._run(task_id, record)
        self._finish(task_id, token, fields)
        return True

    def run_pending(self, limit=None):
        """Run waiting tasks until there are none (or ``limit`` ran); the count."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise TypeError(f"run_pending's limit must be an int or None, got {limit!r}")
        if limit is not None and limit < 0:
            raise ValueError(f"run_pending's limit must be at least 0, got {limit!r}")
        count = 0
        while (limit is None or count < limit) and self.run_once():
            count += 1
        return count

    def _run(self, task_id, record):
        try:
            func = self._resolve(record)
            args, kwargs = self._arguments(record, func)
        except TaskRefused as exc:
            log.warning("strand: reader %s refused task %s: %s", self.name, task_id, exc)
            return _error_fields("TaskRefused", str(exc), f"TaskRefused: {exc}\n")
        try:
            result = func(*args, **kwargs)
            if is_one_shot(result):
                result = list(result)  # a generator cannot be stored; its items can
            return {**status_fields(COMPLETE), "finished": time.time(),
                    **self._encode_result(task_id, record, result)}
        except Exception as exc:
            return _error_fields(type(exc).__qualname__, str(exc), traceback.format_exc())

    def _finish(self, task_id, token, fields):
        outcome = self._write_outcome(task_id, token, fields)
        if outcome is None:
            log.warning("strand: reader %s stopped before it could write the outcome of task "
                        "%s (the store is unreachable); the task will run again after its "
                        "lease", self.name, task_id)
            return
        written, status = outcome
        if not written:
            log.warning("strand: reader %s lost its claim on task %s (its lease expired); "
                        "its outcome was not written", self.name, task_id)
        elif status == COMPLETE:
            self.completed += 1
        else:
            self.failed += 1

    def _write_outcome(self, task_id, token, fields):
        """``(written, status)`` from ``finish_task``, tried again while the
        store is unreachable (a repeated finish is harmless); None if the
        reader was stopped first."""
        interval = self.poll_interval
        while True:
            try:
                outcome = self._finish_task(task_id, token, fields)
            except self._connection_errors as exc:
                self._unreachable(exc)
                if self._stop.wait(interval):
                    return None
                interval = min(interval * 2, self.max_reconnect_interval)
            else:
                self._reached()
                return outcome

    def _finish_task(self, task_id, token, fields):
        try:
            return self._queue.finish_task(task_id, token, fields), fields["status"]
        except (TypeError, ValueError) as exc:  # the result could not be encoded
            fields = _error_fields(type(exc).__qualname__, f"the result could not be stored: {exc}",
                                   traceback.format_exc())
            return self._queue.finish_task(task_id, token, fields), fields["status"]

    def _encode_result(self, task_id, record, result):
        serializer = self._serializer(record.get("serializer"))
        if serializer is None:
            return {"result": result}
        data = serializer.dumps(result)
        fields = {"result": data}
        if self._key is not None:
            fields["result_signature"] = result_signature(self._key, task_id, data)
        return fields

    # --- the security rules --------------------------------------------------

    def _resolve(self, record):
        self._check_signature(record)
        if self.get_task_func is not None:
            return self._from_get_task_func(record)
        try:
            func = self.functions.resolve(record)
        except LookupError as exc:
            raise TaskRefused(str(exc)) from None
        if func is not None:
            return func
        if record.get("func") is not None:
            return self._load_function(record)
        raise TaskRefused(f"no function named {record.get('name')!r} is known to this reader "
                          "(register it with strand.register_task, or pass functions= or "
                          "get_task_func=)")

    def _from_get_task_func(self, record):
        try:
            func = self.get_task_func(record)
        except Exception as exc:
            raise TaskRefused(f"get_task_func failed: {type(exc).__name__}: {exc}") from None
        if not callable(func):
            raise TaskRefused(f"get_task_func returned {func!r} for {record.get('name')!r}, "
                              "not a function")
        return func

    def _check_signature(self, record):
        signature = record.get("signature")
        if signature is None:
            if self.require_signature:
                raise TaskRefused("the record is not signed and this reader requires signatures")
            return
        if self._key is not None and not verify_record(self._key, record):
            raise TaskRefused("the record does not match its signature: it was altered, or "
                              "signed with another secret; nothing was run")

    def _signed(self, record, what):
        """Refuse ``what`` (pickled code or data) unless the record is signed
        with this reader's secret (_check_signature verified a signature)."""
        if self._key is None:
            raise TaskRefused(f"the task carries {what}; this reader loads one only when "
                              "created with secret= and the record is signed with it")
        if record.get("signature") is None:
            raise TaskRefused(f"the task carries {what} but the record is not signed")

    def _load_function(self, record):
        self._signed(record, "a pickled function")
        serializer = self._serializer(record.get("func_serializer") or "dill")
        try:
            func = unwrap(serializer.loads(record["func"]))
        except Exception as exc:
            raise TaskRefused(f"the pickled function could not be loaded: {exc!r}") from None
        if not callable(func):
            raise TaskRefused(f"the pickled function is a {type(func).__name__}, not callable")
        return func

    def _arguments(self, record, func):
        """The call's ``(args, kwargs)``: the record's ``init_args`` and
        ``args``, ``init_kwargs`` and ``kwargs``, as the writer's runner
        would have merged them."""
        serializer = self._serializer(record.get("serializer"))
        if serializer is not None and not serializer.trusted:
            self._signed(record, f"{serializer.name}-serialized arguments")
        init_args = self._field(record, "init_args", serializer, [])
        args = self._field(record, "args", serializer, [])
        init_kwargs = self._field(record, "init_kwargs", serializer, {})
        kwargs = self._field(record, "kwargs", serializer, {})
        if not all(isinstance(value, (list, tuple)) for value in (init_args, args)) or \
                not all(isinstance(value, dict) for value in (init_kwargs, kwargs)):
            raise TaskRefused("the record's init_args and args must be lists and its "
                              "init_kwargs and kwargs dicts")
        try:
            return [*init_args, *args], merge_kwargs(init_kwargs, kwargs, func)
        except TypeError as exc:
            raise TaskRefused(str(exc)) from None

    @staticmethod
    def _field(record, name, serializer, empty):
        value = record.get(name)
        if value is None:  # a record from before init_args, or written by hand
            return empty
        if serializer is None:
            return value
        try:
            return serializer.loads(value)
        except Exception as exc:
            raise TaskRefused(f"the arguments could not be loaded: {exc!r}") from None

    @staticmethod
    def _serializer(name):
        try:
            return get_serializer(name)
        except (TypeError, ValueError) as exc:
            raise TaskRefused(str(exc)) from None


def verify_record(key, record):
    """True when the record's signature matches its signed fields."""
    return verify(key, {name: record.get(name) for name in SIGNED_FIELDS},
                  record.get("signature"))


def _error_fields(error_type, message, trace):
    return {**status_fields(ERROR), "finished": time.time(), "error_type": error_type,
            "error_message": message, "error": trace}


def _positive(value, what, allow_none=False):
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


class _Heartbeat:
    """Renews a claim's lease every third of it while the task runs."""

    def __init__(self, queue, task_id, token, lease, connection_errors):
        self._active = lease is not None and not isinstance(queue, MappingTaskQueue)
        self._args = (task_id, token, lease)
        self._queue = queue
        self._connection_errors = connection_errors
        self._lease = lease
        self._done = threading.Event()
        self._thread = None

    def __enter__(self):
        if self._active:
            self._thread = threading.Thread(target=self._beat, daemon=True,
                                            name="strand-heartbeat")
            self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        return False

    def _beat(self):
        failing = False
        while not self._done.wait(self._lease / 3):
            try:
                if not self._queue.renew_task(*self._args):
                    log.warning("strand: the claim on task %s was lost", self._args[0])
                    return
                failing = False
            except self._connection_errors as exc:
                if not failing:  # once per outage; the reader reports the outage itself
                    log.debug("strand: could not renew the claim on task %s: %s",
                              self._args[0], exc)
                failing = True
            except Exception:
                log.exception("strand: could not renew the claim on task %s", self._args[0])


@atexit.register
def _stop_readers():
    readers = list(_listening)
    for reader in readers:
        reader._stop.set()
    for reader in readers:
        reader.stop(timeout=1.0)
