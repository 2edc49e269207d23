"""cache_result: per-thread or per-process memoization of factory functions."""
import enum
import functools
import threading

import _lateral


class CacheScopes(int, enum.Enum):
    """Where a cached result is shared: per thread or by the whole process."""
    THREAD = 1
    PROCESS = 2


def _key(args, kwargs):
    key = (args, tuple(sorted(kwargs.items()))) if kwargs else (args, ())
    try:
        hash(key)
    except TypeError as exc:
        raise TypeError(f"cache_result needs hashable arguments: {exc}") from None
    return key


class _ThreadCache:
    def __init__(self, fn):
        self._fn = fn
        self._local = threading.local()

    def __call__(self, *args, **kwargs):
        local = self._local
        store = getattr(local, "store", None)
        if store is None:
            store = local.store = {}
        key = _key(args, kwargs)
        try:
            return store[key]
        except KeyError:
            value = store[key] = self._fn(*args, **kwargs)
            return value

    def clear(self):
        self._local = threading.local()


class _ProcessCache:
    def __init__(self, fn):
        self._fn = fn
        self._store = {}
        self._lock = threading.RLock()

    def __call__(self, *args, **kwargs):
        key = _key(args, kwargs)
        try:
            return self._store[key]
        except KeyError:
            pass
        with self._lock:  # one computation per key, even under contention
            if key not in self._store:
                self._store[key] = self._fn(*args, **kwargs)
            return self._store[key]

    def clear(self):
        with self._lock:
            self._store = {}


def cache_result(scope=CacheScopes.THREAD):
    """Cache a function's result per arguments, per thread (``THREAD``) or for
    the whole process (``PROCESS``).  The decorated function gains
    ``clear_cache()``, which forgets every cached result."""
    given = scope
    try:
        # A flag is a mistake even though True == 1 == CacheScopes.THREAD.
        scope = None if isinstance(scope, bool) else CacheScopes(scope)
    except ValueError:
        scope = None
    if scope is None:
        raise ValueError(f"cache_result scope must be CacheScopes.THREAD or "
                         f"CacheScopes.PROCESS, got {given!r}")

    def decorate(fn):
        if not callable(fn):
            raise TypeError(f"cache_result needs a callable, got {type(fn).__name__}")
        cache = (_ThreadCache if scope is CacheScopes.THREAD else _ProcessCache)(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            _lateral.checkpoint()  # a safe point for a halted task
            return cache(*args, **kwargs)

        wrapper.clear_cache = cache.clear
        return wrapper

    return decorate
