"""cache_result: per-thread or per-process memoization of factory functions."""
import enum
import functools
import threading
from collections.abc import Callable, Hashable
from typing import Any, Generic, ParamSpec, Protocol, TypeVar

import _lateral

_P = ParamSpec("_P")
_R = TypeVar("_R")
_R_co = TypeVar("_R_co", covariant=True)


class CacheScopes(int, enum.Enum):
    """Where a cached result is shared: per thread or by the whole process."""
    THREAD = 1
    PROCESS = 2


class CachedFunction(Protocol[_P, _R_co]):
    """What :func:`cache_result` makes of a function: the function, same
    signature, plus ``clear_cache()``."""

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R_co: ...

    def clear_cache(self) -> None:
        """Forget every cached result."""


def _key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
    key = (args, tuple(sorted(kwargs.items()))) if kwargs else (args, ())
    try:
        hash(key)
    except TypeError as exc:
        raise TypeError(f"cache_result needs hashable arguments: {exc}") from None
    return key


class _ThreadCache(Generic[_R]):
    def __init__(self, fn: Callable[..., _R]) -> None:
        self._fn = fn
        self._local = threading.local()

    def __call__(self, *args: Any, **kwargs: Any) -> _R:
        local = self._local
        store: dict[Hashable, _R] | None = getattr(local, "store", None)
        if store is None:
            store = local.store = {}
        key = _key(args, kwargs)
        try:
            return store[key]
        except KeyError:
            value = store[key] = self._fn(*args, **kwargs)
            return value

    def clear(self) -> None:
        self._local = threading.local()


class _ProcessCache(Generic[_R]):
    def __init__(self, fn: Callable[..., _R]) -> None:
        self._fn = fn
        self._store: dict[Hashable, _R] = {}
        self._lock = threading.RLock()

    def __call__(self, *args: Any, **kwargs: Any) -> _R:
        key = _key(args, kwargs)
        try:
            return self._store[key]
        except KeyError:
            pass
        # One computation per key, even under contention.  The lock is taken
        # in C (locked_call): a with block that a signal handler raises into
        # as it begins (3.14) would leave it held, and every other thread
        # calling the function would wait for ever.
        return _lateral.locked_call(self._lock, self._compute_once, key, args, kwargs)

    def _compute_once(self, key: Hashable, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> _R:
        """Contract: _lock held."""
        if key not in self._store:
            self._store[key] = self._fn(*args, **kwargs)
        return self._store[key]

    def clear(self) -> None:
        _lateral.locked_call(self._lock, self._forget)

    def _forget(self) -> None:
        """Contract: _lock held."""
        self._store = {}


def cache_result(scope: CacheScopes | int = CacheScopes.THREAD,
                 ) -> Callable[[Callable[_P, _R]], CachedFunction[_P, _R]]:
    """Cache a function's result per arguments, per thread (``THREAD``) or for
    the whole process (``PROCESS``).  The decorated function gains
    ``clear_cache()``, which forgets every cached result."""
    given = scope
    checked: CacheScopes | None
    try:
        # A flag is a mistake even though True == 1 == CacheScopes.THREAD.
        checked = None if isinstance(scope, bool) else CacheScopes(scope)
    except ValueError:
        checked = None
    if checked is None:
        raise ValueError(f"cache_result scope must be CacheScopes.THREAD or "
                         f"CacheScopes.PROCESS, got {given!r}")

    def decorate(fn: Callable[_P, _R]) -> CachedFunction[_P, _R]:
        if not callable(fn):
            raise TypeError(f"cache_result needs a callable, got {type(fn).__name__}")
        cache = (_ThreadCache if checked is CacheScopes.THREAD else _ProcessCache)(fn)

        @functools.wraps(fn)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            _lateral.checkpoint()  # a safe point for a halted task
            return cache(*args, **kwargs)

        wrapper.clear_cache = cache.clear  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]  # it has clear_cache now

    return decorate
