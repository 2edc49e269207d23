"""The rules by which a store reader finds a task's function and arguments:
by name, or pickled and signed with the reader's secret; see docs/strand.md."""
from collections.abc import Callable, Mapping
from typing import Any, overload

from ._util import merge_kwargs
from .base import unwrap
from .registry import TaskRegistry
from .serialization import Serializer, get_serializer, verify
from .writer import SIGNED_FIELDS


class TaskRefused(Exception):
    """A reader would not run a task (unknown function, missing or wrong
    signature...); the task is marked ``error`` with this reason."""


class TaskResolver:
    """The security rules of :class:`strand.StoreTaskReader` (a mixin: it
    reads ``get_task_func``, ``functions``, ``_key`` and ``require_signature``)."""

    get_task_func: Callable[[Mapping[str, Any]], Any] | None
    functions: TaskRegistry
    require_signature: bool
    _key: bytes | None

    def _resolve(self, task_id: str, record: Mapping[str, Any]) -> Callable[..., Any]:
        """The function to run for ``record``, claimed under ``task_id``;
        TaskRefused with the reason if there is none this reader may run."""
        self._check_fields(record)
        self._check_signature(task_id, record)
        if self.get_task_func is not None:
            return self._from_get_task_func(record)
        try:
            func = self.functions.resolve(record)
        except LookupError as exc:
            raise TaskRefused(str(exc)) from None
        if func is not None:
            return func
        if record.get("func") is not None:
            return self._load_function(record)
        raise TaskRefused(f"no function named {record.get('name')!r} is known to this reader "
                          "(register it with strand.register_task, or pass functions= or "
                          "get_task_func=)")

    def _from_get_task_func(self, record: Mapping[str, Any]) -> Callable[..., Any]:
        try:
            func: object = self.get_task_func(record)  # type: ignore[misc]  # not None here
        except Exception as exc:
            raise TaskRefused(f"get_task_func failed: {type(exc).__name__}: {exc}") from None
        if not callable(func):
            raise TaskRefused(f"get_task_func returned {func!r} for {record.get('name')!r}, "
                              "not a function")
        return func

    @staticmethod
    def _check_fields(record: Mapping[str, Any]) -> None:
        for name in ("name", "qualname", "func_serializer", "serializer", "signature"):
            value = record.get(name)
            if value is not None and not isinstance(value, str):
                raise TaskRefused(f"the record's {name} must be a string, got "
                                  f"{type(value).__name__}: {value!r:.80}")

    def _check_signature(self, task_id: str, record: Mapping[str, Any]) -> None:
        signature = record.get("signature")
        if signature is None:
            if self.require_signature:
                raise TaskRefused("the record is not signed and this reader requires signatures")
            return
        if self._key is not None and not verify_record(self._key, record, task_id):
            raise TaskRefused("the record does not match its signature: it was altered, or "
                              "signed with another secret; nothing was run")

    def _signed(self, record: Mapping[str, Any], what: str) -> None:
        """Refuse ``what`` (pickled code or data) unless the record is signed
        with this reader's secret (_check_signature verified a signature)."""
        if self._key is None:
            raise TaskRefused(f"the task carries {what}; this reader loads one only when "
                              "created with secret= and the record is signed with it")
        if record.get("signature") is None:
            raise TaskRefused(f"the task carries {what} but the record is not signed")

    def _load_function(self, record: Mapping[str, Any]) -> Callable[..., Any]:
        self._signed(record, "a pickled function")
        serializer = self._serializer(record.get("func_serializer") or "dill")
        try:
            func = unwrap(serializer.loads(record["func"]))
        except Exception as exc:
            raise TaskRefused(f"the pickled function could not be loaded: {exc!r}") from None
        if not callable(func):
            raise TaskRefused(f"the pickled function is a {type(func).__name__}, not callable")
        return func

    def _arguments(self, record: Mapping[str, Any],
                   func: Callable[..., Any]) -> tuple[list[Any], dict[str, Any]]:
        """The call's ``(args, kwargs)``: the record's ``init_args`` and
        ``args``, ``init_kwargs`` and ``kwargs``, as the writer's runner
        would have merged them."""
        serializer = self._serializer(record.get("serializer"))
        if serializer is not None and not serializer.trusted:
            self._signed(record, f"{serializer.name}-serialized arguments")
        init_args = self._field(record, "init_args", serializer, [])
        args = self._field(record, "args", serializer, [])
        init_kwargs = self._field(record, "init_kwargs", serializer, {})
        kwargs = self._field(record, "kwargs", serializer, {})
        if not all(isinstance(value, (list, tuple)) for value in (init_args, args)) or \
                not all(isinstance(value, dict) for value in (init_kwargs, kwargs)):
            raise TaskRefused("the record's init_args and args must be lists and its "
                              "init_kwargs and kwargs dicts")
        try:
            return [*init_args, *args], merge_kwargs(init_kwargs, kwargs, func)
        except TypeError as exc:
            raise TaskRefused(str(exc)) from None

    @staticmethod
    def _field(record: Mapping[str, Any], name: str, serializer: Serializer | None,
               empty: Any) -> Any:
        value = record.get(name)
        if value is None:  # a record from before init_args, or written by hand
            return empty
        if serializer is None:
            return value
        try:
            return serializer.loads(value)
        except Exception as exc:
            raise TaskRefused(f"the arguments could not be loaded: {exc!r}") from None

    @overload
    @staticmethod
    def _serializer(name: str) -> Serializer:
        ...

    @overload
    @staticmethod
    def _serializer(name: str | None) -> Serializer | None:
        ...

    @staticmethod
    def _serializer(name: str | None) -> Serializer | None:
        try:
            return get_serializer(name)
        except (TypeError, ValueError) as exc:
            raise TaskRefused(str(exc)) from None


def verify_record(key: bytes, record: Mapping[str, Any], task_id: str | None = None) -> bool:
    """True when the record's signature matches its signed fields -- with
    ``id`` the key the record was found under, when ``task_id`` is given (a
    signed record copied under another key does not match)."""
    fields = {name: record.get(name) for name in SIGNED_FIELDS}
    if task_id is not None:
        fields["id"] = task_id
    return verify(key, fields, record.get("signature"))
