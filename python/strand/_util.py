"""Small helpers shared by the strand modules."""
import collections.abc
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

_F = TypeVar("_F", bound=Callable[..., Any])

#: Results that are iterable but are one value, not a sequence of items, for ``on_iter``.
_SCALAR_ITERABLES = (str, bytes, bytearray, memoryview)


def require_callable(value: _F, what: str) -> _F:
    """Return ``value`` if it is callable, else raise a TypeError naming ``what``."""
    if not callable(value):
        raise TypeError(f"{what} must be callable, got {type(value).__name__}: {value!r}")
    return value


@overload
def optional_callable(value: None, what: str) -> None:
    ...


@overload
def optional_callable(value: _F, what: str) -> _F:
    ...


def optional_callable(value: _F | None, what: str) -> _F | None:
    """Like :func:`require_callable`, but ``None`` is allowed."""
    return None if value is None else require_callable(value, what)


def iterates_items(result: object) -> bool:
    """True when ``on_iter`` should get ``result``'s items: it is iterable and
    not a string or bytes (which are one value, not a sequence of values)."""
    return (isinstance(result, collections.abc.Iterable)
            and not isinstance(result, _SCALAR_ITERABLES))


def is_one_shot(result: object) -> bool:
    """True for an iterator (a generator, say): iterating it consumes it."""
    return isinstance(result, collections.abc.Iterator)


def func_name(func: object) -> str:
    """A readable name for a callable, for error messages and task records."""
    name: str = getattr(func, "__name__", None) or type(func).__name__
    return name


def qualified_name(func: object) -> str:
    """``module:qualname`` of a callable (falls back to its type's name)."""
    module = getattr(func, "__module__", None) or "?"
    qualname = getattr(func, "__qualname__", None) or func_name(func)
    return f"{module}:{qualname}"


def merge_kwargs(first: Mapping[str, Any], second: Mapping[str, Any],
                 func: object) -> dict[str, Any]:
    """``{**first, **second}``, but a key in both raises the TypeError a call
    ``func(**first, **second)`` would raise."""
    if not first:
        return dict(second)
    duplicate = first.keys() & second.keys()
    if duplicate:
        key = sorted(duplicate)[0]
        raise TypeError(f"{func_name(func)}() got multiple values for keyword argument {key!r}")
    merged = dict(first)
    merged.update(second)
    return merged
