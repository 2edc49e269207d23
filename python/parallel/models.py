"""The objects users build (arg, future) and get back (results, FailedTask)."""


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


class future:
    """One call for :func:`parallel.par`: ``parallel.future(fn, *args, **kwargs)``.

    Nothing runs until ``par`` (or ``async_par``) runs it.
    """

    __slots__ = ("fn", "args", "kwargs")

    def __init__(self, fn, *args, **kwargs):
        if not callable(fn):
            raise TypeError(f"parallel.future needs a callable first, got {fn!r}")
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def __eq__(self, other):
        if not isinstance(other, future):
            return NotImplemented
        return (self.fn, self.args, self.kwargs) == (other.fn, other.args, other.kwargs)

    __hash__ = None

    def __repr__(self):
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        params = _format_call_args(self.args, self.kwargs)
        return f"parallel.future({name}{', ' if params else ''}{params})"

    def __reduce__(self):
        return _make_future, (self.fn, self.args, self.kwargs)


def _make_future(fn, args, kwargs):
    return future(fn, *args, **kwargs)


def _format_call_args(args, kwargs):
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return ", ".join(parts)


class FailedTask:
    """A call that raised, in silent mode: its positional ``params`` (a tuple),
    its keyword arguments ``kwargs`` (a dict, ``extras`` included) and the
    exception ``ex``.

    Two FailedTask compare equal when params, kwargs, the exception's type and
    the exception's args are equal.
    """

    __slots__ = ("params", "kwargs", "ex")

    def __init__(self, params=(), kwargs=None, ex=None):
        try:
            self.params = tuple(params)
            self.kwargs = dict(kwargs) if kwargs else {}
        except (TypeError, ValueError):
            raise TypeError(f"FailedTask needs params= a tuple of positional arguments and "
                            f"kwargs= a dict, got params={params!r}, kwargs={kwargs!r}") from None
        self.ex = ex

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
