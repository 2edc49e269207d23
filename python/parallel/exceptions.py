"""Exceptions raised by parallel itself (task exceptions propagate as they are)."""
import concurrent.futures
import pickle
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any


class ParallelException(Exception):
    """Base class of the exceptions raised by parallel itself."""


#: The published python-parallel's name of :class:`ParallelException`.
BaseParallelException = ParallelException


class ParallelStatusException(ParallelException):
    """A :class:`parallel.ThreadExecutor` (or ProcessExecutor) was asked for
    results before :meth:`start`, or started twice."""


# concurrent.futures.TimeoutError is the builtin TimeoutError from Python 3.11
# on, a separate class before: catch either.
_TIMEOUT_BASES = tuple(dict.fromkeys((TimeoutError, concurrent.futures.TimeoutError)))


if TYPE_CHECKING:
    # A type checker cannot read the *bases below; from Python 3.11 on they are these.
    class TimeoutException(ParallelException, TimeoutError):
        ...
else:
    class TimeoutException(ParallelException, *_TIMEOUT_BASES):
        """The results were not ready within the ``timeout``.

        It is also a :class:`TimeoutError` (and a ``concurrent.futures.TimeoutError``).
        """


class WorkerProcessError(ParallelException, BrokenProcessPool):
    """A worker process died (killed by a signal, ``os._exit``, out of memory)
    while it ran some of the calls.  The process pool is discarded."""


class SerializationError(ParallelException, pickle.PicklingError):
    """A function, parameter, result or exception could not be pickled to
    cross a process boundary."""


class RemoteError(ParallelException):
    """Stands for an exception raised in a worker process that could not be
    pickled back; ``type_name`` and the message of the original are kept."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.type_name, self.message)


class RemoteTraceback(Exception):
    """Set as ``__cause__`` of an exception raised in a worker process, so the
    worker's traceback is printed with it."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


__all__ = [
    "BaseParallelException",
    "ParallelException",
    "ParallelStatusException",
    "RemoteError",
    "RemoteTraceback",
    "SerializationError",
    "TimeoutException",
    "WorkerProcessError",
]
