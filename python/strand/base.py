"""The base Taskrunner: a stored callable, partial arguments and callbacks."""
import types
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from ._util import (func_name, iterates_items, merge_kwargs, optional_callable,
                    require_callable)
from .handles import CompletedHandle, Handle, Outcome

_R = TypeVar("_R")


class Taskrunner(Generic[_R]):
    """Calls ``func(*init_args, *args, **init_kwargs, **kwargs)`` when called.

    ``on_iter(item)`` runs for every item of an iterable return value (strings
    and bytes count as one value), ``on_end(value)`` with the return value,
    ``on_error(exc)`` with an exception raised by ``func`` or by those
    callbacks; without ``on_error`` the exception propagates.

    This base class runs synchronously and returns ``func``'s return value
    (``None`` when ``on_error`` handled an exception).  ``safety_checks=False``
    turns off the checks that subclasses make against common mistakes.

    For type checkers a ``Taskrunner[R]``: ``R`` is what ``func`` returns,
    hence what a subclass's handle gives (``None`` when ``on_error``
    handled an exception).
    """

    def __init__(self, func: Callable[..., _R], *init_args: Any,
                 on_iter: Callable[[Any], object] | None = None,
                 on_end: Callable[[_R], object] | None = None,
                 on_error: Callable[[Exception], object] | None = None,
                 safety_checks: bool = True, **init_kwargs: Any) -> None:
        self.func = require_callable(func, f"the function of {type(self).__name__}")
        self.init_args = init_args
        self.init_kwargs = init_kwargs
        self.on_iter = optional_callable(on_iter, "on_iter")
        self.on_end = optional_callable(on_end, "on_end")
        self.on_error = optional_callable(on_error, "on_error")
        self.safety_checks = bool(safety_checks)

    @property
    def name(self) -> str:
        """The function's ``__name__``."""
        return func_name(self.func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run ``func`` now (this class) or start it (the subclasses)."""
        return self._execute(args, kwargs)

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> "Taskrunner[_R]":
        ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> Callable[..., Any]:
        ...

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        # A runner stored on a class (``@as_task`` on a method) binds like a function.
        return self if instance is None else types.MethodType(self, instance)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    def _merged(self, args: tuple[Any, ...], kwargs: dict[str, Any],
                ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The full positional and keyword arguments of one call."""
        return self.init_args + tuple(args), merge_kwargs(self.init_kwargs, kwargs, self.func)

    def _execute(self, args: tuple[Any, ...], kwargs: dict[str, Any],
                 outcome: Outcome | None = None) -> _R | None:
        """Call ``func`` and the callbacks, as documented on the class."""
        try:
            full_args, full_kwargs = self._merged(args, kwargs)
            result = self.func(*full_args, **full_kwargs)
            self._deliver(result)
            return result
        except Exception as exc:
            return self._handle_error(exc, outcome)

    def _deliver(self, result: _R) -> None:
        if self.on_iter is not None and iterates_items(result):
            for item in result:  # type: ignore[attr-defined]  # iterates_items checked it
                self.on_iter(item)
        if self.on_end is not None:
            self.on_end(result)

    def _handle_error(self, exc: Exception, outcome: Outcome | None = None) -> _R | None:
        if self.on_error is None:
            raise exc
        if outcome is not None:
            outcome.handled_error = exc
        self.on_error(exc)
        return None

    def _submit(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Handle[Any]:
        """Start one call and return a handle (used by ``strand.dispatch``)."""
        outcome = Outcome()
        try:
            value = self._execute(args, kwargs, outcome)
        except Exception as exc:
            return CompletedHandle(self.name, exc=exc, outcome=outcome)
        return CompletedHandle(self.name, value, outcome=outcome)


def unwrap(func: Callable[..., Any]) -> Callable[..., Any]:
    """The plain function behind a Taskrunner (``@as_task`` replaces a module's
    function by a runner), or ``func`` itself."""
    while isinstance(func, Taskrunner):
        func = func.func
    return func
