"""@parallel.decorate / @parallel.decorated."""
import functools
import importlib
import sys
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

import _lateral

from . import _params, api
from ._params import PROCESS_EXECUTOR, THREAD_EXECUTOR, ExecutorArg
from .models import DictResult, ListResult, future

_P = ParamSpec("_P")
_Q = ParamSpec("_Q")
_R = TypeVar("_R")
_K = TypeVar("_K")
_S = TypeVar("_S")
#: What an execution's results() gives (see api.AsyncExecution).
_Execution = api.AsyncExecution


class ParallelFunction(Generic[_P, _R]):
    """A function decorated with :func:`decorate`.

    Calling it runs the function verbatim.  It gains ``map``, ``async_map``
    and ``future``, and ``thread`` / ``process`` namespaces with ``map`` and
    ``async_map``.  Options given to the decorator (``executor``,
    ``timeout``, ``max_workers``, ``silent``) are the defaults of its
    ``map`` calls.  It pickles by reference when it is a module-level name,
    else by value, so process pools can run it.

    For type checkers a ``ParallelFunction[P, R]``: calling it and
    ``future(...)`` take the function's parameters ``P``; ``map`` gives a
    ``ListResult[R]`` (a ``DictResult[K, R]`` for a dict of parameters).
    """

    # Set by functools.update_wrapper.
    __wrapped__: Callable[_P, _R]
    __qualname__: str

    def __init__(self, fn: Callable[_P, _R], options: dict[str, Any]) -> None:
        if not callable(fn):
            raise TypeError(f"ParallelFunction needs a callable, got {fn!r}")
        functools.update_wrapper(self, fn)
        self._options = options
        self.thread: FunctionNamespace[_R] = FunctionNamespace(self, THREAD_EXECUTOR)
        self.process: FunctionNamespace[_R] = FunctionNamespace(self, PROCESS_EXECUTOR)

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return self.__wrapped__(*args, **kwargs)

    @overload
    def map(  # type: ignore[overload-overlap]  # a dict is iterable too
            self, params: dict[_K, Any], *,
            extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
            executor: ExecutorArg | None = ..., max_workers: int | None = ...,
            timeout: float | None = ..., silent: bool | None = ...,
            ) -> DictResult[_K, _R]:
        ...

    @overload
    def map(
            self, params: Iterable[Any], *,
            extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
            executor: ExecutorArg | None = ..., max_workers: int | None = ...,
            timeout: float | None = ..., silent: bool | None = ...,
            ) -> ListResult[_R]:
        ...

    def map(self, params: Iterable[Any], *, extras: dict[str, Any] | None = None,
            unpack_arguments: bool = True, executor: ExecutorArg | None = None,
            max_workers: int | None = None, timeout: float | None = None,
            silent: bool | None = None) -> Any:
        """:func:`parallel.map` of this function; options left to None take
        the decorator's."""
        work = _params.map_work(self, params, extras, unpack_arguments,
                                f"{self.__qualname__}.map")
        return api.run_blocking(work, *self._resolve(executor, max_workers, timeout, silent))

    @overload
    def async_map(  # type: ignore[overload-overlap]  # a dict is iterable too
            self, params: dict[_K, Any], *,
            extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
            executor: ExecutorArg | None = ..., max_workers: int | None = ...,
            timeout: float | None = ..., silent: bool | None = ...,
            ) -> _Execution[DictResult[_K, _R]]:
        ...

    @overload
    def async_map(
            self, params: Iterable[Any], *,
            extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
            executor: ExecutorArg | None = ..., max_workers: int | None = ...,
            timeout: float | None = ..., silent: bool | None = ...,
            ) -> _Execution[ListResult[_R]]:
        ...

    def async_map(self, params: Iterable[Any], *, extras: dict[str, Any] | None = None,
                  unpack_arguments: bool = True, executor: ExecutorArg | None = None,
                  max_workers: int | None = None, timeout: float | None = None,
                  silent: bool | None = None) -> _Execution[Any]:
        """:func:`parallel.async_map` of this function."""
        work = _params.map_work(self, params, extras, unpack_arguments,
                                f"{self.__qualname__}.async_map")
        return api.start(work, *self._resolve(executor, max_workers, timeout, silent))

    def future(self, *args: _P.args, **kwargs: _P.kwargs) -> future:
        """A call of this function for :func:`parallel.par`."""
        return future(self, *args, **kwargs)

    def _resolve(self, executor: ExecutorArg | None, max_workers: int | None,
                 timeout: float | None, silent: bool | None,
                 ) -> tuple[ExecutorArg | None, int | None, float | None, bool]:
        given = {"executor": executor, "max_workers": max_workers, "timeout": timeout,
                 "silent": silent}
        options: dict[str, Any] = {name: self._options.get(name) if value is None else value
                                   for name, value in given.items()}
        return (options["executor"], options["max_workers"], options["timeout"],
                bool(options["silent"]))

    # Stored on a class, it binds like a function (the instance is the first argument).
    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> "ParallelFunction[_P, _R]":
        ...

    @overload
    def __get__(self: "ParallelFunction[Concatenate[_S, _Q], _R]", obj: _S,
                objtype: type | None = None) -> "ParallelFunction[_Q, _R]":
        ...

    def __get__(self, obj: object, objtype: type | None = None) -> "ParallelFunction[Any, _R]":
        if obj is None:
            return self
        return ParallelFunction(self.__wrapped__.__get__(obj, objtype), self._options)

    def __reduce__(self) -> tuple[Any, ...]:
        module, qualname = getattr(self, "__module__", None), getattr(self, "__qualname__", "")
        if module and module != "__main__" and "<locals>" not in qualname:
            if _lookup(sys.modules.get(module), qualname) is self:
                return _resolve_global, (module, qualname)
        return ParallelFunction, (self.__wrapped__, self._options)

    def __repr__(self) -> str:
        return f"<parallel function {getattr(self, '__qualname__', self.__wrapped__)!r}>"


class FunctionNamespace(Generic[_R]):
    """``decorated_fn.thread`` / ``decorated_fn.process``."""

    def __init__(self, function: ParallelFunction[..., _R], executor: ExecutorArg) -> None:
        self._function = function
        self.executor = executor

    @overload
    def map(  # type: ignore[overload-overlap]  # a dict is iterable too
            self, params: dict[_K, Any], *,
            extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
            max_workers: int | None = ..., timeout: float | None = ...,
            silent: bool | None = ...,
            ) -> DictResult[_K, _R]:
        ...

    @overload
    def map(
            self, params: Iterable[Any], *,
            extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
            max_workers: int | None = ..., timeout: float | None = ...,
            silent: bool | None = ...,
            ) -> ListResult[_R]:
        ...

    def map(self, params: Iterable[Any], *, extras: dict[str, Any] | None = None,
            unpack_arguments: bool = True, max_workers: int | None = None,
            timeout: float | None = None, silent: bool | None = None) -> Any:
        """The function's ``map`` on this executor."""
        return self._function.map(params, extras=extras, unpack_arguments=unpack_arguments,
                                  executor=self.executor, max_workers=max_workers,
                                  timeout=timeout, silent=silent)

    @overload
    def async_map(  # type: ignore[overload-overlap]  # a dict is iterable too
            self, params: dict[_K, Any], *,
            extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
            max_workers: int | None = ..., timeout: float | None = ...,
            silent: bool | None = ...,
            ) -> _Execution[DictResult[_K, _R]]:
        ...

    @overload
    def async_map(
            self, params: Iterable[Any], *,
            extras: dict[str, Any] | None = ..., unpack_arguments: bool = ...,
            max_workers: int | None = ..., timeout: float | None = ...,
            silent: bool | None = ...,
            ) -> _Execution[ListResult[_R]]:
        ...

    def async_map(self, params: Iterable[Any], *, extras: dict[str, Any] | None = None,
                  unpack_arguments: bool = True, max_workers: int | None = None,
                  timeout: float | None = None, silent: bool | None = None) -> _Execution[Any]:
        """The function's ``async_map`` on this executor."""
        return self._function.async_map(params, extras=extras,
                                        unpack_arguments=unpack_arguments,
                                        executor=self.executor, max_workers=max_workers,
                                        timeout=timeout, silent=silent)


def _lookup(module: ModuleType | None, qualname: str) -> Any:
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _resolve_global(module: str, qualname: str) -> Any:
    return _lookup(importlib.import_module(module), qualname)


@overload
def decorate(fn: Callable[_P, _R], *, executor: ExecutorArg | None = ...,
             timeout: float | None = ..., max_workers: int | None = ...,
             silent: bool | None = ...) -> ParallelFunction[_P, _R]:
    ...


@overload
def decorate(fn: None = None, *, executor: ExecutorArg | None = ...,
             timeout: float | None = ..., max_workers: int | None = ...,
             silent: bool | None = ...,
             ) -> Callable[[Callable[_P, _R]], ParallelFunction[_P, _R]]:
    ...


def decorate(fn: Callable[..., Any] | None = None, *, executor: ExecutorArg | None = None,
             timeout: float | None = None, max_workers: int | None = None,
             silent: bool | None = None) -> Any:
    """Decorate a function for parallel use: ``@parallel.decorate`` or
    ``@parallel.decorate(executor=..., timeout=..., max_workers=...,
    silent=...)``.  The function still runs verbatim when called and gains
    ``.map``, ``.async_map``, ``.future``, ``.thread.map`` and
    ``.process.map``."""
    options: dict[str, Any] = {}
    if executor is not None:
        options["executor"] = _params.check_executor(executor)
    if timeout is not None:
        options["timeout"] = _lateral.check_timeout(timeout)
    if max_workers is not None:
        options["max_workers"] = _params.check_max_workers(max_workers)
    if silent is not None:
        options["silent"] = bool(silent)
    if fn is None:
        return functools.partial(_wrap, options=options)
    return _wrap(fn, options)


def _wrap(fn: Callable[_P, _R], options: dict[str, Any]) -> ParallelFunction[_P, _R]:
    if not callable(fn):
        raise TypeError(f"@parallel.decorate needs a function, got {fn!r}; pass options "
                        f"by name: @parallel.decorate(executor='process')")
    return ParallelFunction(fn, options)


#: Same as :func:`decorate` (both spellings are documented).
decorated = decorate
