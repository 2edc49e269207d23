"""Task functions a store reader may run, looked up by name."""
from __future__ import annotations

import collections.abc
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias, TypeVar, cast, overload

import _lateral_sync

from ._util import func_name, qualified_name, require_callable
from .base import unwrap

_AMBIGUOUS = object()
_F = TypeVar("_F", bound=Callable[..., Any])
#: What a registry can be filled from.
Functions: TypeAlias = \
    "Mapping[str, Callable[..., Any]] | Iterable[Callable[..., Any]] | TaskRegistry"


class TaskRegistry:
    """Maps task names to functions of this process.

    A function is registered under its ``module:qualname`` and its plain
    ``__name__``; when two different functions share a plain name, that name
    becomes ambiguous and only the qualified names resolve.
    """

    def __init__(self, functions: Functions | None = None) -> None:
        self._by_name: dict[str, Callable[..., Any] | object] = {}
        # A Guard: the program's thread registers, where Ctrl-C lands, and
        # readers' threads resolve.
        self._guard = _lateral_sync.Guard()
        if functions is not None:
            self.update(functions)

    def register(self, func: _F, name: str | None = None) -> _F:
        """Register ``func`` (a Taskrunner registers its function) under
        ``name`` if given, else under its qualified and plain names."""
        func = cast(_F, unwrap(require_callable(func, "a task function")))
        if name is not None:
            self._guard.call(self._by_name.__setitem__, self._check_name(name), func)
        else:
            self._guard.call(self._add, func)
        return func

    def _add(self, func: Callable[..., Any]) -> None:
        """Register under the qualified and plain names.  Contract: _guard held."""
        self._by_name[qualified_name(func)] = func
        plain = func_name(func)
        known = self._by_name.get(plain)
        self._by_name[plain] = func if known in (None, func) else _AMBIGUOUS

    def update(self, functions: Functions) -> None:
        """Register a mapping ``{name: func}`` or an iterable of functions."""
        if isinstance(functions, TaskRegistry):
            items: dict[str, object] = functions._guard.call(dict, functions._by_name)
            self._guard.call(self._by_name.update, items)
            return
        if hasattr(functions, "items"):
            for name, func in functions.items():
                self.register(func, name)
            return
        try:
            iterator = iter(functions)
        except TypeError:
            raise TypeError("functions must be a mapping of names to functions, an "
                            f"iterable of functions or a TaskRegistry, got {functions!r}") from None
        for func in iterator:
            self.register(func)

    def resolve(self, record: Mapping[str, Any]) -> Callable[..., Any] | None:
        """The function for a task record (by ``qualname``, then ``name``), or
        None.  Raises LookupError if the plain name is ambiguous."""
        if not isinstance(record, collections.abc.Mapping):
            raise TypeError(f"resolve needs a task record (a mapping), got {record!r}")
        func = self._guard.call(self._lookup, record.get("qualname"), record.get("name"))
        if func is _AMBIGUOUS:
            raise LookupError(f"the task name {record.get('name')!r} matches several "
                              "registered functions; register one under that name explicitly")
        return cast("Callable[..., Any] | None", func)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return self._guard.call(sorted, self._by_name)

    def _lookup(self, qualname: Any, name: Any) -> object:
        """Contract: _guard held."""
        func = self._by_name.get(qualname)
        return func if func is not None else self._by_name.get(name)

    @staticmethod
    def _check_name(name: object) -> str:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a task name must be a non-empty string, got {name!r}")
        return name


#: The process's registry: every StoreTaskWriter registers its function here,
#: and a StoreTaskReader without ``functions=`` resolves names with it.
registry = TaskRegistry()


@overload
def register_task(func: _F, *, name: str | None = None) -> _F:
    ...


@overload
def register_task(func: None = None, *, name: str | None = None) -> Callable[[_F], _F]:
    ...


def register_task(func: _F | None = None, *, name: str | None = None) -> Any:
    """Decorator: register a function with :data:`registry` so that store
    readers of this process can run tasks naming it.  ``@register_task`` or
    ``@register_task(name='other')``; returns the function unchanged."""
    if func is None:
        return lambda f: register_task(f, name=name)
    registry.register(func, name)
    return func
