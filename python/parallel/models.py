"""The objects users build (arg, future, ParallelJob) and get back (results,
FailedTask), and the rule that turns a ``par`` entry into a call."""
import enum

import _lateral


class arg:
    """Explicit arguments of one call: ``parallel.arg(*args, **kwargs)``.

    Use it where a parameter would otherwise be unpacked: a dict that is a
    plain positional argument, or a tuple that is one argument.
    """

    __slots__ = ("args", "kwargs")

    def __init__(self, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs

    def __eq__(self, other):
        if not isinstance(other, arg):
            return NotImplemented
        return self.args == other.args and self.kwargs == other.kwargs

    __hash__ = None

    def __repr__(self):
        return f"parallel.arg({_format_call_args(self.args, self.kwargs)})"

    def __reduce__(self):
        return _make_arg, (self.args, self.kwargs)


def _make_arg(args, kwargs):
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

    def __init__(self, fn, name=None, args=None, kwargs=None):
        if fn is not None and not callable(fn):
            raise TypeError(f"ParallelJob needs a callable (or None), got {fn!r}")
        self.fn = fn
        self.name = name
        self.args = () if args is None else args
        self.kwargs = {} if kwargs is None else kwargs

    def __eq__(self, other):
        if not isinstance(other, ParallelJob):
            return NotImplemented
        return ((self.fn, self.name, tuple(self.args), self.kwargs)
                == (other.fn, other.name, tuple(other.args), other.kwargs))

    __hash__ = None

    def __repr__(self):
        return (f"ParallelJob({_name_of(self.fn)}, name={self.name!r}, "
                f"args={self.args!r}, kwargs={self.kwargs!r})")

    def __reduce__(self):
        return ParallelJob, (self.fn, self.name, self.args, self.kwargs)

    @classmethod
    def normalize_params(cls, params, extras=None, unpack_arguments=True):
        """(args tuple, kwargs dict) of one ``map`` parameter, ``extras``
        added (the parameter's own keywords win)."""
        args, kwargs = _lateral.split_args(params, unpack_arguments, arg)
        return args, {**(extras or {}), **kwargs}

    @classmethod
    def normalize_job(cls, name, params, extras=None, unpack_arguments=True):
        """The job of one ``par`` entry (see :func:`call_of`), ``extras`` added."""
        fn, args, kwargs = call_of(params, unpack_arguments)
        own_name = params.name if isinstance(params, ParallelJob) else None
        return cls(fn, name=own_name or name, args=args,
                   kwargs={**(extras or {}), **(kwargs or {})})

    @classmethod
    def build_jobs_from_params(cls, params, extras=None, unpack_arguments=True):
        """The jobs of ``par(params)``: a sequence or a dict of entries."""
        return [cls.normalize_job(name, entry, extras, unpack_arguments)
                for name, entry in _named(params)]

    @classmethod
    def build_for_callable_from_params(cls, fn, params, extras=None, unpack_arguments=True):
        """The jobs of ``map(fn, params)``: a sequence or a dict of parameters."""
        jobs = []
        for name, param in _named(params):
            args, kwargs = cls.normalize_params(param, extras, unpack_arguments)
            jobs.append(cls(fn, name=name, args=args, kwargs=kwargs))
        return jobs


def _named(params):
    """(name, entry) pairs: a dict's items, or (None, entry) for a sequence."""
    if isinstance(params, dict):
        return list(params.items())
    return [(None, entry) for entry in params]


def _name_of(fn):
    return getattr(fn, "__qualname__", None) or repr(fn)


class future(ParallelJob):
    """One call for :func:`parallel.par`: ``parallel.future(fn, *args, **kwargs)``
    (``parallel.job`` is the published library's name for it).

    Nothing runs until ``par`` (or ``async_par``) runs it.
    """

    __slots__ = ()

    def __init__(self, fn, *args, **kwargs):
        if not callable(fn):
            raise TypeError(f"parallel.future needs a callable first, got {fn!r}")
        super().__init__(fn, None, args, kwargs)

    def __repr__(self):
        params = _format_call_args(self.args, self.kwargs)
        return f"parallel.future({_name_of(self.fn)}{', ' if params else ''}{params})"

    def __reduce__(self):
        return _make_future, (self.fn, self.args, self.kwargs)


def _make_future(fn, args, kwargs):
    return future(fn, *args, **kwargs)


def call_of(entry, unpack=True, where="par"):
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


def _format_call_args(args, kwargs):
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

    def __init__(self, params=(), kwargs=None, ex=None, *, exc=None):
        if exc is not None:
            if ex is not None:
                raise TypeError("FailedTask takes the exception as ex= or exc=, not both")
            ex = exc
        job = None
        if isinstance(params, ParallelJob):  # the published form: FailedTask(job, exc)
            if kwargs is not None:
                if ex is not None:
                    raise TypeError("FailedTask(job, exc) takes no kwargs: they are the job's")
                ex, kwargs = kwargs, None
            job, params, kwargs = params, params.args, params.kwargs
        try:
            self.params = tuple(params)
            self.kwargs = dict(kwargs) if kwargs else {}
        except (TypeError, ValueError):
            raise TypeError(f"FailedTask needs params= a tuple of positional arguments and "
                            f"kwargs= a dict, got params={params!r}, kwargs={kwargs!r}") from None
        self.ex = ex
        self._job = job

    @property
    def exc(self):
        """The exception (the published library's name for :attr:`ex`)."""
        return self.ex

    @property
    def job(self):
        """The failed call as a :class:`ParallelJob` (``fn`` is None when the
        FailedTask was built from params and kwargs alone)."""
        if self._job is None:
            return ParallelJob(None, None, self.params, self.kwargs)
        return self._job

    def __eq__(self, other):
        if not isinstance(other, FailedTask):
            return NotImplemented
        return (self.params == other.params and self.kwargs == other.kwargs
                and type(self.ex) is type(other.ex)
                and getattr(self.ex, "args", None) == getattr(other.ex, "args", None))

    __hash__ = None

    def __repr__(self):
        return f"FailedTask(params={self.params!r}, kwargs={self.kwargs!r}, ex={self.ex!r})"

    def __reduce__(self):
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

    _failed_keys = ()

    @property
    def failures(self):
        """True if at least one call failed."""
        return bool(self._failed_keys)

    @property
    def failed(self):
        """The failed calls' :class:`FailedTask`, as a list or a dict."""
        raise NotImplementedError

    @property
    def succeeded(self):
        """The successful calls' values, as a list or a dict."""
        raise NotImplementedError

    def replace_failed(self, value):
        """A copy of the results where every failed call holds ``value``."""
        raise NotImplementedError


class ListResult(list, BaseResult):
    """Results of a sequence of parameters, in input order."""

    def __init__(self, values=(), failed_indexes=()):
        super().__init__(values)
        self._failed_keys = tuple(failed_indexes)

    @property
    def failed(self):
        """The :class:`FailedTask` of the failed calls, in input order."""
        return [self[i] for i in self._failed_keys]

    @property
    def succeeded(self):
        """The values of the successful calls, in input order."""
        if not self._failed_keys:
            return list(self)
        failed = set(self._failed_keys)
        return [v for i, v in enumerate(self) if i not in failed]

    def replace_failed(self, value):
        """A copy (a ListResult without failures) with ``value`` in every
        failed place."""
        copy = list(self)
        for i in self._failed_keys:
            copy[i] = value
        return ListResult(copy)

    def __reduce__(self):
        return ListResult, (list(self), self._failed_keys)


class DictResult(dict, BaseResult):
    """Results of a dict of parameters, by the same keys."""

    def __init__(self, values=(), failed_keys=()):
        super().__init__(values)
        self._failed_keys = tuple(failed_keys)

    @property
    def failed(self):
        """Key -> :class:`FailedTask` of the failed calls."""
        return {k: self[k] for k in self._failed_keys}

    @property
    def succeeded(self):
        """Key -> value of the successful calls."""
        if not self._failed_keys:
            return dict(self)
        failed = set(self._failed_keys)
        return {k: v for k, v in self.items() if k not in failed}

    def replace_failed(self, value):
        """A copy (a DictResult without failures) with ``value`` for every
        failed key."""
        copy = dict(self)
        for k in self._failed_keys:
            copy[k] = value
        return DictResult(copy)

    def __reduce__(self):
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
