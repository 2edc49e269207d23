"""The @pylateral.task decorator."""
from __future__ import annotations  # _lateral.Task is generic for type checkers only

import functools
from collections.abc import Callable
from typing import Any, Literal, ParamSpec, overload

import _lateral

_P = ParamSpec("_P")


# Without has_return_value the function must return None (else
# UnexpectedReturnValueError): the overloads let a type checker see that too.
@overload
def task(fn: Callable[_P, None], *, has_return_value: Literal[False] = False) -> _lateral.Task[_P]:
    ...


@overload
def task(fn: Callable[_P, object], *, has_return_value: bool) -> _lateral.Task[_P]:
    ...


@overload
def task(  # type: ignore[overload-overlap]  # a bool flag may be False: the looser form
        fn: None = None, *, has_return_value: Literal[False] = False,
        ) -> Callable[[Callable[_P, None]], _lateral.Task[_P]]:
    ...


@overload
def task(fn: None = None, *, has_return_value: bool,
         ) -> Callable[[Callable[_P, object]], _lateral.Task[_P]]:
    ...


def task(fn: Callable[..., Any] | None = None, *, has_return_value: bool = False) -> Any:
    """Mark ``fn`` as a task: inside a task pool each call is queued on a pool
    thread and returns ``None`` at once; outside one, the call runs serially.

    Usable as ``@task``, ``@task()`` or ``@task(has_return_value=True)``.
    Without ``has_return_value`` a task that returns anything but ``None``
    fails with :class:`UnexpectedReturnValueError`; with it, return values are
    collected on the pool (``pool.return_values()``) or on the enclosing
    :func:`task_group`.
    """
    if fn is None:
        return functools.partial(task, has_return_value=has_return_value)
    if not callable(fn):
        raise TypeError(f"@pylateral.task needs a callable, got {type(fn).__name__}")
    wrapper = _lateral.Task(fn, bool(has_return_value))
    functools.update_wrapper(wrapper, fn)
    return wrapper
