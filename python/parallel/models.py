"""The objects users build (arg, future, ParallelJob) and get back (results,
FailedTask), and the rule that turns a ``par`` entry into a call."""
import enum
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

import _lateral

_T = TypeVar("_T")
_U = TypeVar("_U")
_K = TypeVar("_K")
_V = TypeVar("_V")


class arg:
    """Explicit arguments of one call: ``parallel.arg(*args, **kwargs)``.

    Use it where a parameter would otherwise be unpacked: a dict that is a
    plain positional argument, or a tuple that is one argument.
    """

    __slots__ = ("args", "kwargs")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, arg):
            return NotImplemented
        return self.args == other.args and self.kwargs == other.kwargs

    __hash__ = None  # type: ignore[assignment]  # unhashable: mutable, compares by value

    def __repr__(self) -> str:
        return f"parallel.arg({_format_call_args(self.args, self.kwargs)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return _make_arg, (self.args, self.kwargs)


def _make_arg(args: tuple[Any, ...], kwargs: dict[str, Any]) -> arg:
    return arg(*args, **kwargs)


class ParallelJob:
    """One call, ``fn(*args, **kwargs)``, with an optional ``name`` (its key
    in a dict of calls): the published python-parallel's model, which
    :func:`parallel.par` runs like a :class:`future`.

    Two jobs are equal when fn, name, args and kwargs are.  The class
    methods build jobs from the parameters of ``map`` and ``par``, by the
    same rules those use.
    """

    __slots__ = ("fn", "name", "args", "kwargs")

    def __init__(self, fn: Callable[..., Any] | None, name: Hashable | None = None,
                 args: Sequence[Any] | None = None,
                 kwargs: dict[str, Any] | None = None) -> None:
        if fn is not None and not callable(fn):
            raise TypeError(f"ParallelJob needs a callable (or None), got {fn!r}")
        self.fn = fn
        self.name = name
        self.args: Sequence[Any] = () if args is None else args
        self.kwargs: dict[str, Any] = {} if kwargs is None else kwargs

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParallelJob):
            return NotImplemented
        return ((self.fn, self.name, tuple(self.args), self.kwargs)
                == (other.fn, other.name, tuple(other.args), other.kwargs))

    __hash__ = None  # type: ignore[assignment]  # unhashable: mutable, compares by value

    def __repr__(self) -> str:
        return (f"ParallelJob({_name_of(self.fn)}, name={self.name!r}, "
                f"args={self.args!r}, kwargs={self.kwargs!r})")

    def __reduce__(self) -> tuple[Any, ...]:
        return ParallelJob, (self.fn, self.name, self.args, self.kwargs)

    @classmethod
    def normalize_params(cls, params: object, extras: Mapping[str, Any] | None = None,
                         unpack_arguments: bool = True,
                         ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """(args tuple, kwargs dict) of one ``map`` parameter, ``extras``
        added (the parameter's own keywords win)."""
        args, kwargs = _lateral.split_args(params, unpack_arguments, arg)
        return args, {**(extras or {}), **kwargs}

    @classmethod
    def normalize_job(cls, name: Hashable | None, params: object,
                      extras: Mapping[str, Any] | None = None,
                      unpack_arguments: bool = True) -> "ParallelJob":
        """The job of one ``par`` entry (see :func:`call_of`), ``extras`` added."""
        fn, args, kwargs = call_of(params, unpack_arguments)
        own_name = params.name if isinstance(params, ParallelJob) else None
        return cls(fn, name=own_name or name, args=args,
                   kwargs={**(extras or {}), **(kwargs or {})})

    @classmethod
    def build_jobs_from_params(cls, params: Iterable[Any] | Mapping[Any, Any],
                               extras: Mapping[str, Any] | None = None,
                               unpack_arguments: bool = True) -> "list[ParallelJob]":
        """The jobs of ``par(params)``: a sequence or a dict of entries."""
        return [cls.normalize_job(name, entry, extras, unpack_arguments)
                for name, entry in _named(params)]

    @classmethod
    def build_for_callable_from_params(cls, fn: Callable[..., Any],
                                       params: Iterable[Any] | Mapping[Any, Any],
                                       extras: Mapping[str, Any] | None = None,
                                       unpack_arguments: bool = True) -> "list[ParallelJob]":
        """The jobs of ``map(fn, params)``: a sequence or a dict of parameters."""
        jobs = []
        for name, param in _named(params):
            args, kwargs = cls.normalize_params(param, extras, unpack_arguments)
            jobs.append(cls(fn, name=name, args=args, kwargs=kwargs))
        return jobs


def _named(params: Iterable[Any] | Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    """(name, entry) pairs: a dict's items, or (None, entry) for a sequence."""
    if isinstance(params, dict):
        return list(params.items())
    return [(None, entry) for entry in params]


def _name_of(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


class future(ParallelJob):
    """One call for :func:`parallel.par`: ``parallel.future(fn, *args, **kwargs)``
    (``parallel.job`` is the published library's name for it).

    Nothing runs until ``par`` (or ``async_par``) runs it.
    """

    __slots__ = ()

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if not callable(fn):
            raise TypeError(f"parallel.future needs a callable first, got {fn!r}")
        super().__init__(fn, None, args, kwargs)

    def __repr__(self) -> str:
        params = _format_call_args(self.args, self.kwargs)
        return f"parallel.future({_name_of(self.fn)}{', ' if params else ''}{params})"

    def __reduce__(self) -> tuple[Any, ...]:
        return _make_future, (self.fn, self.args, self.kwargs)


def _make_future(fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> future:
    return future(fn, *args, **kwargs)


def call_of(entry: object, unpack: bool = True, where: str = "par",
            ) -> tuple[Callable[..., Any] | None, tuple[Any, ...], dict[str, Any] | None]:
    """(fn, args tuple, kwargs dict or None) of one ``par`` entry: a
    :class:`future` or :class:`ParallelJob`; a tuple or list ``(fn, arg1,
    ..., {'kw': value})`` whose arguments follow map's unpacking rule (with
    ``unpack=False`` they are all positional, as they are); or a callable,
    called without arguments."""
    if isinstance(entry, ParallelJob):
        return entry.fn, tuple(entry.args), dict(entry.kwargs)
    if isinstance(entry, (tuple, list)) and entry and callable(entry[0]):
        rest = tuple(entry[1:])
        if not unpack:
            return entry[0], rest, None
        args, kwargs = _lateral.split_args(rest)
        return entry[0], args, kwargs
    if callable(entry):
        return entry, (), None
    raise TypeError(f"{where} must be parallel.future(fn, ...), a tuple "
                    f"(fn, arg1, ..., {{'kw': value}}) or a callable, got {entry!r}")


def _format_call_args(args: Iterable[Any], kwargs: Mapping[str, Any]) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return ", ".join(parts)


class FailedTask:
    """A call that raised, in silent mode: its positional ``params`` (a tuple),
    its keyword arguments ``kwargs`` (a dict, ``extras`` included), the
    exception ``ex`` (also ``exc``) and the call as a :class:`ParallelJob`,
    ``job`` (with the function, and the call's key for a dict of calls).

    Built as documented, ``FailedTask(params=..., kwargs=..., ex=...)``, or
    as in the published code, ``FailedTask(job, exc)``.  Two FailedTask
    compare equal when params, kwargs, the exception's type and the
    exception's args are equal, whichever way they were built.
    """

    __slots__ = ("params", "kwargs", "ex", "_job")

    def __init__(self, params: Iterable[Any] | ParallelJob = (),
                 kwargs: Mapping[str, Any] | BaseException | None = None,
                 ex: BaseException | None = None, *, exc: BaseException | None = None) -> None:
        if exc is not None:
            if ex is not None:
                raise TypeError("FailedTask takes the exception as ex= or exc=, not both")
            ex = exc
        job = None
        if isinstance(params, ParallelJob):  # the published form: FailedTask(job, exc)
            if kwargs is not None:
                if ex is not None:
                    raise TypeError("FailedTask(job, exc) takes no kwargs: they are the job's")
                ex, kwargs = cast(BaseException, kwargs), None
            job = params
            params, kwargs = job.args, job.kwargs
        try:
            self.params = tuple(params)
            self.kwargs = dict(cast(Mapping[str, Any], kwargs)) if kwargs else {}
        except (TypeError, ValueError):
            raise TypeError(f"FailedTask needs params= a tuple of positional arguments and "
                            f"kwargs= a dict, got params={params!r}, kwargs={kwargs!r}") from None
        self.ex = ex
        self._job = job

    @property
    def exc(self) -> BaseException | None:
        """The exception (the published library's name for :attr:`ex`)."""
        return self.ex

    @property
    def job(self) -> ParallelJob:
        """The failed call as a :class:`ParallelJob` (``fn`` is None when the
        FailedTask was built from params and kwargs alone)."""
        if self._job is None:
            return ParallelJob(None, None, self.params, self.kwargs)
        return self._job

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FailedTask):
            return NotImplemented
        return (self.params == other.params and self.kwargs == other.kwargs
                and type(self.ex) is type(other.ex)
                and getattr(self.ex, "args", None) == getattr(other.ex, "args", None))

    __hash__ = None  # type: ignore[assignment]  # unhashable: mutable, compares by value

    def __repr__(self) -> str:
        return f"FailedTask(params={self.params!r}, kwargs={self.kwargs!r}, ex={self.ex!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Without the job: its function may not pickle where the rest does.
        return FailedTask, (self.params, self.kwargs, self.ex)


class BaseResult:
    """What ``map``, ``par`` and their async forms return: a list (for a
    sequence of parameters) or a dict (for a dict of them), plus:

    * ``failures``: True if any call failed (silent mode);
    * ``failed``: the :class:`FailedTask` of the failed calls;
    * ``succeeded``: the values of the calls that did not fail;
    * ``replace_failed(value)``: a copy with every failure replaced by ``value``.
    """

    _failed_keys: tuple[Any, ...] = ()

    @property
    def failures(self) -> bool:
        """True if at least one call failed."""
        return bool(self._failed_keys)

    @property
    def failed(self) -> list[FailedTask] | dict[Any, FailedTask]:
        """The failed calls' :class:`FailedTask`, as a list or a dict."""
        raise NotImplementedError

    @property
    def succeeded(self) -> list[Any] | dict[Any, Any]:
        """The successful calls' values, as a list or a dict."""
        raise NotImplementedError

    def replace_failed(self, value: Any) -> "BaseResult":
        """A copy of the results where every failed call holds ``value``."""
        raise NotImplementedError


class ListResult(list[_T], BaseResult):
    """Results of a sequence of parameters, in input order.

    For type checkers a ``ListResult[T]``: ``T`` is the function's return
    type (a failed call's place holds its :class:`FailedTask` instead, in
    silent mode: read :attr:`succeeded` and :attr:`failed`)."""

    def __init__(self, values: Iterable[_T] = (), failed_indexes: Iterable[int] = ()) -> None:
        super().__init__(values)
        self._failed_keys = tuple(failed_indexes)

    @property
    def failed(self) -> list[FailedTask]:
        """The :class:`FailedTask` of the failed calls, in input order."""
        return [cast(FailedTask, self[i]) for i in self._failed_keys]

    @property
    def succeeded(self) -> list[_T]:
        """The values of the successful calls, in input order."""
        if not self._failed_keys:
            return list(self)
        failed = set(self._failed_keys)
        return [v for i, v in enumerate(self) if i not in failed]

    def replace_failed(self, value: _U) -> "ListResult[_T | _U]":
        """A copy (a ListResult without failures) with ``value`` in every
        failed place."""
        copy: list[_T | _U] = list(self)
        for i in self._failed_keys:
            copy[i] = value
        return ListResult(copy)

    def __reduce__(self) -> tuple[Any, ...]:
        return ListResult, (list(self), self._failed_keys)


class DictResult(dict[_K, _V], BaseResult):
    """Results of a dict of parameters, by the same keys.

    For type checkers a ``DictResult[K, V]``: the parameters' keys and the
    function's return type (see :class:`ListResult` about silent mode)."""

    def __init__(self, values: Mapping[_K, _V] | Iterable[tuple[_K, _V]] = (),
                 failed_keys: Iterable[_K] = ()) -> None:
        super().__init__(values)
        self._failed_keys = tuple(failed_keys)

    @property
    def failed(self) -> dict[_K, FailedTask]:
        """Key -> :class:`FailedTask` of the failed calls."""
        return {k: cast(FailedTask, self[k]) for k in self._failed_keys}

    @property
    def succeeded(self) -> dict[_K, _V]:
        """Key -> value of the successful calls."""
        if not self._failed_keys:
            return dict(self)
        failed = set(self._failed_keys)
        return {k: v for k, v in self.items() if k not in failed}

    def replace_failed(self, value: _U) -> "DictResult[_K, _V | _U]":
        """A copy (a DictResult without failures) with ``value`` for every
        failed key."""
        copy: dict[_K, _V | _U] = dict(self)
        for k in self._failed_keys:
            copy[k] = value
        return DictResult(copy)

    def __reduce__(self) -> tuple[Any, ...]:
        return DictResult, (dict(self), self._failed_keys)


#: The published library's names of the two result classes.
SequentialMapResult = ListResult
NamedMapResult = DictResult
#: The published library's name of :class:`arg`.
ParallelArg = arg


@enum.unique
class ParallelStatus(enum.Enum):
    """Where a :class:`parallel.ThreadExecutor` (or ProcessExecutor) stands."""

    NOT_STARTED = "NOT_STARTED"
    STARTED = "STARTED"
    DONE = "DONE"
    FAILED = "FAILED"
