"""@parallel.decorate / @parallel.decorated."""
import functools
import importlib
import sys

import _lateral

from . import _params, api
from ._params import PROCESS_EXECUTOR, THREAD_EXECUTOR
from .models import future


class ParallelFunction:
    """A function decorated with :func:`decorate`.

    Calling it runs the function verbatim.  It gains ``map``, ``async_map``
    and ``future``, and ``thread`` / ``process`` namespaces with ``map`` and
    ``async_map``.  Options given to the decorator (``executor``,
    ``timeout``, ``max_workers``, ``silent``) are the defaults of its
    ``map`` calls.  It pickles by reference when it is a module-level name,
    else by value, so process pools can run it.
    """

    def __init__(self, fn, options):
        if not callable(fn):
            raise TypeError(f"ParallelFunction needs a callable, got {fn!r}")
        functools.update_wrapper(self, fn)
        self._options = options
        self.thread = FunctionNamespace(self, THREAD_EXECUTOR)
        self.process = FunctionNamespace(self, PROCESS_EXECUTOR)

    def __call__(self, *args, **kwargs):
        return self.__wrapped__(*args, **kwargs)

    def map(self, params, *, extras=None, unpack_arguments=True, executor=None,
            max_workers=None, timeout=None, silent=None):
        """:func:`parallel.map` of this function; options left to None take
        the decorator's."""
        work = _params.map_work(self, params, extras, unpack_arguments,
                                f"{self.__qualname__}.map")
        return api.run_blocking(work, *self._resolve(executor, max_workers, timeout, silent))

    def async_map(self, params, *, extras=None, unpack_arguments=True, executor=None,
                  max_workers=None, timeout=None, silent=None):
        """:func:`parallel.async_map` of this function."""
        work = _params.map_work(self, params, extras, unpack_arguments,
                                f"{self.__qualname__}.async_map")
        return api.start(work, *self._resolve(executor, max_workers, timeout, silent))

    def future(self, *args, **kwargs):
        """A call of this function for :func:`parallel.par`."""
        return future(self, *args, **kwargs)

    def _resolve(self, executor, max_workers, timeout, silent):
        given = {"executor": executor, "max_workers": max_workers, "timeout": timeout,
                 "silent": silent}
        options = {name: self._options.get(name) if value is None else value
                   for name, value in given.items()}
        return (options["executor"], options["max_workers"], options["timeout"],
                bool(options["silent"]))

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return ParallelFunction(self.__wrapped__.__get__(obj, objtype), self._options)

    def __reduce__(self):
        module, qualname = getattr(self, "__module__", None), getattr(self, "__qualname__", "")
        if module and module != "__main__" and "<locals>" not in qualname:
            if _lookup(sys.modules.get(module), qualname) is self:
                return _resolve_global, (module, qualname)
        return ParallelFunction, (self.__wrapped__, self._options)

    def __repr__(self):
        return f"<parallel function {getattr(self, '__qualname__', self.__wrapped__)!r}>"


class FunctionNamespace:
    """``decorated_fn.thread`` / ``decorated_fn.process``."""

    def __init__(self, function, executor):
        self._function = function
        self.executor = executor

    def map(self, params, *, extras=None, unpack_arguments=True, max_workers=None,
            timeout=None, silent=None):
        """The function's ``map`` on this executor."""
        return self._function.map(params, extras=extras, unpack_arguments=unpack_arguments,
                                  executor=self.executor, max_workers=max_workers,
                                  timeout=timeout, silent=silent)

    def async_map(self, params, *, extras=None, unpack_arguments=True, max_workers=None,
                  timeout=None, silent=None):
        """The function's ``async_map`` on this executor."""
        return self._function.async_map(params, extras=extras,
                                        unpack_arguments=unpack_arguments,
                                        executor=self.executor, max_workers=max_workers,
                                        timeout=timeout, silent=silent)


def _lookup(module, qualname):
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _resolve_global(module, qualname):
    return _lookup(importlib.import_module(module), qualname)


def decorate(fn=None, *, executor=None, timeout=None, max_workers=None, silent=None):
    """Decorate a function for parallel use: ``@parallel.decorate`` or
    ``@parallel.decorate(executor=..., timeout=..., max_workers=...,
    silent=...)``.  The function still runs verbatim when called and gains
    ``.map``, ``.async_map``, ``.future``, ``.thread.map`` and
    ``.process.map``."""
    options = {}
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


def _wrap(fn, options):
    if not callable(fn):
        raise TypeError(f"@parallel.decorate needs a function, got {fn!r}; pass options "
                        f"by name: @parallel.decorate(executor='process')")
    return ParallelFunction(fn, options)


#: Same as :func:`decorate` (both spellings are documented).
decorated = decorate
