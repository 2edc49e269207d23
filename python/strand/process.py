"""MultiprocessTaskrunner: runs the function in a new process."""
import multiprocessing
import multiprocessing.connection
import pickle
import signal
import sys
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar, cast

import _lateral
import cloudpickle

from ._util import is_one_shot, iterates_items
from .base import Taskrunner, unwrap
from .handles import Outcome, TaskHandle
from .threads import start_on_pool

_R = TypeVar("_R")


class TaskProcessError(ChildProcessError):
    """The child process ended (crashed, was killed, exited) before it sent
    the function's result back."""


class RemoteTraceback(Exception):
    """Carries the child's formatted traceback; set as ``__cause__`` of an
    exception raised in the child, so the parent's traceback shows both."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n\"\"\"\n{self.text}\"\"\""


class ProcessTaskHandle(TaskHandle[_R]):
    """The handle of a ``MultiprocessTaskrunner`` call: joinable like a
    thread handle, plus ``pid``, ``process`` and ``terminate()``."""

    def __init__(self, batch: _lateral.Batch, name: str, outcome: Outcome | None,
                 process: BaseProcess) -> None:
        super().__init__(batch, name, outcome)
        self.process = process

    @property
    def pid(self) -> int | None:
        """The child's process id."""
        return self.process.pid

    def terminate(self) -> None:
        """Stop the child (SIGTERM); the call then fails with TaskProcessError."""
        if self.process.is_alive():
            self.process.terminate()

    def _cancel_unstarted(self) -> None:
        # The child already runs: its supervising call must still read what
        # it sends back (and reap it), so an awaiter's cancellation leaves it.
        pass


class MultiprocessTaskrunner(Taskrunner[_R]):
    """Runs ``func`` in a new process and returns a :class:`ProcessTaskHandle`.

    The callbacks run in the calling process, in a thread of strand's pool,
    with what the child sends back: the items of a generator result are sent
    one by one to ``on_iter`` as the child produces them (``on_end`` then gets
    ``None``, since a generator cannot cross processes); any other result is
    sent once, to ``on_iter`` (its items) and ``on_end``.  Results and
    exceptions must be picklable.

    ``mp_context``: a ``multiprocessing`` context or start-method name
    (default: multiprocessing's default).  With ``spawn`` or ``forkserver``
    the function and arguments must be picklable too; if not, the call raises
    a TypeError naming the culprit.  A child that dies before sending its
    result fails the call with :class:`TaskProcessError`.
    """

    def __init__(self, func: Callable[..., _R], *init_args: Any,
                 mp_context: BaseContext | str | None = None, **kwargs: Any) -> None:
        super().__init__(func, *init_args, **kwargs)
        self._context = _resolve_context(mp_context)

    def __call__(self, *args: Any, **kwargs: Any) -> ProcessTaskHandle[_R]:
        return self._submit(args, kwargs)

    def _submit(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ProcessTaskHandle[_R]:
        full_args, full_kwargs = self._merged(args, kwargs)
        portable = _portable(self.func)
        target: object = portable
        if self._context.get_start_method() != "fork":
            target = _ByValue(portable)
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(  # type: ignore[attr-defined]  # every context has it
            target=_child_main, name=f"strand-{self.name}",
            args=(sender, target, full_args, full_kwargs, self.on_iter is not None, self.name))
        try:
            self._start(process, target, full_args, full_kwargs)
        except BaseException:
            receiver.close()
            raise
        finally:
            sender.close()  # the child holds its own copy
        outcome = Outcome()
        batch = start_on_pool(self._supervise, (process, receiver, outcome))
        return ProcessTaskHandle(batch, self.name, outcome, process)

    def _start(self, process: BaseProcess, target: object, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> None:
        try:
            process.start()
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            culprit = _unpicklable_part(target, args, kwargs)
            if culprit is None:
                raise
            method = self._context.get_start_method()
            raise TypeError(
                f"MultiprocessTaskrunner cannot send {culprit} of {self.name}() to a "
                f"'{method}' child process: {exc}. Use a module-level function and "
                "picklable arguments (or the 'fork' start method).") from exc

    def _supervise(self, process: BaseProcess, receiver: Connection,
                   outcome: Outcome) -> _R | None:
        """Runs in a pool thread of the calling process: receive the child's
        messages and run the callbacks."""
        finished = False
        try:
            try:
                result = self._collect(process, receiver)
                finished = True
            finally:
                receiver.close()
                _reap(process, force=not finished)
            if self.on_end is not None:
                self.on_end(result)
            return result
        except Exception as exc:
            return self._handle_error(exc, outcome)

    def _collect(self, process: BaseProcess, receiver: Connection) -> _R:
        while True:
            kind, payload, *rest = _next_message(process, receiver, self.name)
            if kind == "item":
                cast(Callable[[Any], object], self.on_iter)(payload)  # items come only for it
            elif kind == "error":
                if isinstance(payload, SystemExit) and payload.code is None and payload.args:
                    # tblib's pickling_support (installed by dask.distributed)
                    # rebuilds SystemExit without its code.
                    payload.code = (payload.args[0]  # type: ignore[assignment]
                                    if len(payload.args) == 1 else payload.args)
                payload.__cause__ = RemoteTraceback(rest[0])
                raise payload
            else:
                if rest[0] and self.on_iter is not None and iterates_items(payload):
                    for item in payload:
                        self.on_iter(item)
                return cast(_R, payload)


def _resolve_context(mp_context: BaseContext | str | None) -> BaseContext:
    if mp_context is None:
        return multiprocessing.get_context()
    if isinstance(mp_context, str):
        try:
            return multiprocessing.get_context(mp_context)
        except ValueError:
            methods = multiprocessing.get_all_start_methods()
            raise ValueError(f"mp_context must be one of {methods} or a multiprocessing "
                             f"context, got {mp_context!r}") from None
    if not hasattr(mp_context, "Process") or not hasattr(mp_context, "Pipe"):
        raise TypeError(f"mp_context must be a multiprocessing context or a start-method "
                        f"name, got {mp_context!r}")
    return mp_context


class _DecoratedFunction:
    """Stands for a function that ``@as_task`` replaced by a runner in its
    module: pickles as the module attribute's path and calls the runner's
    function in the child (pickling the function itself would fail, since
    the module's attribute is no longer that function)."""

    def __init__(self, module: str, qualname: str) -> None:
        self.module = module
        self.qualname = qualname

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return unwrap(_lookup(self.module, self.qualname))(*args, **kwargs)


def _lookup(module_name: str, qualname: str) -> Any:
    __import__(module_name)
    obj: Any = sys.modules[module_name]
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _portable(func: Callable[..., Any]) -> Callable[..., Any]:
    module, qualname = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
    if not module or "<" in qualname:
        return func
    try:
        holder = _lookup(module, qualname)
    except (ImportError, AttributeError, KeyError):
        return func
    if holder is not func and isinstance(holder, Taskrunner) and unwrap(holder) is func:
        return _DecoratedFunction(module, qualname)
    return func


class _ByValue:
    """Sends a function to a 'spawn' or 'forkserver' child with cloudpickle,
    as parallel does: the child cannot import one defined in the ``__main__``
    of a ``python -c`` script or a notebook by name.  Importable functions
    still travel by reference."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func

    def __reduce__(self) -> tuple[Any, ...]:
        return pickle.loads, (cloudpickle.dumps(self.func, protocol=pickle.HIGHEST_PROTOCOL),)


def _unpicklable_part(target: object, args: tuple[Any, ...], kwargs: dict[str, Any],
                      ) -> str | None:
    from multiprocessing.reduction import ForkingPickler
    for what, obj in (("the function", target), ("the arguments", args),
                      ("the keyword arguments", kwargs)):
        try:
            ForkingPickler.dumps(obj)
        except Exception:
            return what
    return None


def _next_message(process: BaseProcess, receiver: Connection, name: str) -> Any:
    ready = multiprocessing.connection.wait([receiver, process.sentinel])
    if receiver in ready:
        try:
            return receiver.recv()
        except EOFError:
            pass
        except Exception as exc:
            raise TaskProcessError(f"could not read what the process running {name}() "
                                   f"sent back: {exc!r}") from exc
    process.join()
    raise TaskProcessError(f"the process running {name}() {_describe_exit(process.exitcode)} "
                           "before sending its result")


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _reap(process: BaseProcess, force: bool) -> None:
    if force and process.is_alive():
        process.terminate()
    process.join()


def _child_main(sender: Connection, func: Callable[..., Any], args: tuple[Any, ...],
                kwargs: dict[str, Any], stream: bool, name: str) -> None:
    """The child process's entry point: run ``func`` and send the outcome."""
    try:
        result = func(*args, **kwargs)
        streamed = stream and is_one_shot(result)
        if streamed:
            for item in result:
                _send(sender, ("item", item), f"an item yielded by {name}()")
            result = None
        _send(sender, ("end", result, not streamed), f"the result of {name}()")
    except BaseException as exc:
        # SystemExit and KeyboardInterrupt too: the caller gets the task's own
        # exception, as from the thread runner, not a bare exit code.
        _send_error(sender, exc)
    finally:
        sender.close()


def _send(sender: Connection, message: tuple[Any, ...], what: str) -> None:
    try:
        sender.send(message)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        hint = " (a generator result needs on_iter: its items are sent one by one)" \
            if is_one_shot(message[1]) else ""
        raise TypeError(f"{what} cannot be sent back to the calling process: {exc}{hint}") \
            from None


def _send_error(sender: Connection, exc: BaseException) -> None:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        exc = RuntimeError(f"{type(exc).__qualname__}: {_text_of(exc)} (the exception "
                           "itself could not be pickled)")
    exc.__traceback__ = None
    exc.__context__ = exc.__cause__ = None
    sender.send(("error", exc, text))


def _text_of(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder when the exception's ``__str__`` raises."""
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"
