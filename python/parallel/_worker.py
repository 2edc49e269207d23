"""What runs inside a worker process: one chunk of calls per submission.

The parent sends the function once per call as cloudpickle bytes, tagged with
a token; each worker unpickles it once per call and keeps it for the call's
later chunks.  Items travel as one pickle blob per chunk and results come
back the same way; what plain pickle cannot take (lambdas, closures, local
classes) goes through cloudpickle, so it crosses in both directions.  An exception keeps its type and args and carries the worker's
traceback text.
"""
import io
import multiprocessing.connection
import pickle
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar, cast

import _lateral
import cloudpickle
from multiprocessing.reduction import ForkingPickler

from .exceptions import RemoteError, RemoteTraceback, SerializationError
from .models import arg

#: An exception on its way to the parent: (pickled exception or None, type
#: name, message, traceback text).
PackedException = tuple[bytes | None, str, str, str]
#: What a call_blob holds: the function (None for par's calls) and the extras.
CallSpec = tuple[Callable[..., Any] | None, dict[str, Any] | None]

PROTOCOL = pickle.HIGHEST_PROTOCOL
_INLINE: _lateral.Pool | None = None  # this process's inline core pool
_CALLS: dict[object, CallSpec] = {}   # token -> spec, for the latest calls only
_KEEP_CALLS = 8
_R = TypeVar("_R")


def dumps(obj: object) -> bytes:
    blob: bytes = cloudpickle.dumps(obj, protocol=PROTOCOL)
    return blob


def dumps_data(obj: object) -> bytes:
    """Items and results: the C pickler first (several times faster on plain
    data), cloudpickle for what it cannot take (lambdas, local classes)."""
    try:
        return pickle.dumps(obj, protocol=PROTOCOL)
    except Exception:
        return dumps(obj)


def _call_spec(token: object, blob: bytes) -> CallSpec:
    spec = _CALLS.get(token)
    if spec is None:
        spec = cast(CallSpec, pickle.loads(blob))
        if len(_CALLS) >= _KEEP_CALLS:
            del _CALLS[next(iter(_CALLS))]
        _CALLS[token] = spec
    return spec


def run_chunk(token: object, call_blob: bytes, items_blob: bytes, unpack: bool,
              stop_on_error: bool) -> tuple[list[int], bytes, float]:
    """Call the function on every item of the chunk.  Returns (failed
    positions, dumps((results, {position: packed exception})), seconds the
    calls took).  ``call_blob`` holds (function -- None for par's (fn, args,
    kwargs) items -- and extras)."""
    fn, extras = _call_spec(token, call_blob)
    items = pickle.loads(items_blob)
    # The core's inline pool runs the calls in this thread, with the same
    # unpacking rules, in C.
    start = time.perf_counter()
    batch = _inline_pool().map(fn, items, unpack=unpack, extras=extras, arg_type=arg,
                               stop_on_error=stop_on_error)
    elapsed = time.perf_counter() - start
    errors = {position: pack_exception(exc) for position, exc in batch.errors.items()}
    blob = _dump_outcome(batch.results, errors)
    return sorted(errors), blob, elapsed


def serve(tasks: "multiprocessing.connection.Connection",
          results: "multiprocessing.connection.Connection",
          parent_ends: "tuple[multiprocessing.connection.Connection, ...]" = ()) -> None:
    """A worker process's loop: run each ``(fn, args, kwargs)`` that arrives
    on ``tasks`` and send back ``(True, value)`` or ``(False, exception)``,
    until the parent sends an empty message or closes ``tasks``.  Ctrl-C at
    the terminal reaches the workers too: the caller gets the
    KeyboardInterrupt, and a worker just ends, without a traceback of its
    own."""
    # A forked worker inherits the parent's ends of its own pipes: kept, they
    # would hide the parent's death (no end of file on ``tasks``) and leave
    # the worker behind it.
    for end in parent_ends:
        end.close()
    try:
        _run_calls(tasks, results)
    except KeyboardInterrupt:
        pass


def _run_calls(tasks: "multiprocessing.connection.Connection",
               results: "multiprocessing.connection.Connection") -> None:
    while True:
        try:
            blob = tasks.recv_bytes()
        except (EOFError, OSError):
            return
        if not blob:  # the parent's word to stop
            return
        try:
            fn, args, kwargs = pickle.loads(blob)
            reply: tuple[bool, Any] = (True, fn(*args, **kwargs))
        except Exception as exc:  # run_chunk's own failure, not an item's
            reply = (False, exc)
        results.send_bytes(_dump_reply(reply))


def dump_message(obj: object) -> bytes:
    """``obj`` pickled by multiprocessing's pickler (its reducers for
    connections, sockets...) for a pipe between the parent and a worker.
    Not ForkingPickler.dumps: it returns a view of a BytesIO, and a BytesIO
    collected while a view of it is alive prints "Exception ignored ...
    BufferError" (a Ctrl-C at exit showed it).  getvalue() hands over the
    BytesIO's buffer without a copy."""
    buffer = io.BytesIO()
    ForkingPickler(buffer, PROTOCOL).dump(obj)
    return buffer.getvalue()


def _dump_reply(reply: tuple[bool, Any]) -> bytes:
    try:
        return dump_message(reply)
    except Exception as exc:
        what = reply[1]
        error = SerializationError(
            f"{type(what).__name__} cannot be pickled back to the parent process: {exc}")
        return dump_message((False, error))


def _inline_pool() -> _lateral.Pool:
    global _INLINE
    if _INLINE is None or _INLINE.forked:
        _INLINE = _lateral.Pool(1, "parallel-inline", inline=True)
    return _INLINE


def invoke_wrapped(fn: Callable[..., _R], args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> tuple[_R]:
    """(fn(*args, **kwargs),): what other executors run.  Passing the call's
    arguments as two plain values keeps its keywords away from the
    executor's own submit() keywords (dask's key=, pure=, ...)."""
    return (fn(*args, **kwargs),)


def _dump_outcome(results: list[Any], errors: dict[int, PackedException]) -> bytes:
    try:
        return dumps_data((results, errors))
    except Exception:
        pass
    # Find the results that cannot travel and report them as failed calls.
    for position, value in enumerate(results):
        try:
            dumps_data(value)
        except Exception as exc:
            results[position] = None
            error = SerializationError(
                f"the return value of this call ({type(value).__name__}) cannot be "
                f"pickled back to the parent process: {exc}")
            errors[position] = pack_exception(error)
    return dumps_data((results, errors))


def pack_exception(exc: BaseException) -> PackedException:
    """(pickled exception or None, type name, message, traceback text)."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not hide the failure itself
        message = object.__repr__(exc)
    blob: bytes | None
    try:
        blob = dumps(exc)
        pickle.loads(blob)  # an exception whose __init__ wants other args fails here
    except Exception:
        blob = None
    return blob, name, message, text


def unpack_exception(packed: PackedException) -> BaseException:
    """The exception sent by pack_exception, with the worker's traceback as
    its __cause__."""
    blob, name, message, text = packed
    exc = None
    if blob is not None:
        try:
            exc = pickle.loads(blob)
        except Exception:
            exc = None
    if not isinstance(exc, BaseException):
        exc = RemoteError(name, message)
    if isinstance(exc, SystemExit) and exc.code is None and exc.args:
        # tblib's pickling_support (installed by dask.distributed) rebuilds
        # SystemExit without its code; the exit status must survive.
        exc.code = exc.args[0] if len(exc.args) == 1 else exc.args  # type: ignore[assignment]
    exc.__cause__ = RemoteTraceback(text)
    return exc


def load(blob: bytes) -> Any:
    return pickle.loads(blob)
