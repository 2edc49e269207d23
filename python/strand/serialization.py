"""Pluggable serializers, HMAC signing, and the JSON codec of the stores.

A serializer has a ``name``, ``dumps(obj) -> bytes``, ``loads(bytes) -> obj``
and ``trusted``: whether ``loads`` is safe on bytes from anyone.  ``json`` is
trusted; ``pickle``, ``dill`` and ``cloudpickle`` are not (loading them can run any code), so
a task reader loads their bytes only after checking an HMAC signature made
with a secret it shares with the writer.
"""
import base64
import hashlib
import hmac
import json
import pickle

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias, overload

import cloudpickle

from ._util import require_callable

_BYTES_TAG = "__strand_bytes__"

#: A decoded JSON value (a record's fields, a result...).
JSON: TypeAlias = Any


class Serializer:
    """A named pair of ``dumps``/``loads`` functions (see the module doc)."""

    def __init__(self, name: str, dumps: Callable[[Any], Any], loads: Callable[[Any], Any],
                 trusted: bool = False) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a serializer name must be a non-empty string, got {name!r}")
        self.name = name
        self.dumps = require_callable(dumps, f"the dumps of serializer {name!r}")
        self.loads = require_callable(loads, f"the loads of serializer {name!r}")
        self.trusted = bool(trusted)

    def __repr__(self) -> str:
        return f"<Serializer {self.name}{' (trusted)' if self.trusted else ''}>"


def _json_default(value: object) -> dict[str, str]:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {_BYTES_TAG: base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(f"a value of type {type(value).__name__} is not JSON-serializable: {value!r}")


def _json_object_hook(obj: dict[str, Any]) -> dict[str, Any] | bytes:
    if len(obj) == 1 and _BYTES_TAG in obj:
        return base64.b64decode(obj[_BYTES_TAG])
    return obj


def json_dumps(value: object) -> str:
    """JSON text of ``value``; bytes are kept (tagged base64)."""
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def json_loads(text: str | bytes | bytearray) -> JSON:
    """The inverse of :func:`json_dumps`."""
    return json.loads(text, object_hook=_json_object_hook)


def _dill_dumps(value: object) -> bytes:
    import dill
    data: bytes = dill.dumps(value)
    return data


def _dill_loads(data: bytes) -> Any:
    import dill
    return dill.loads(data)


_SERIALIZERS: dict[str, Serializer] = {}


def register_serializer(serializer: Serializer) -> Serializer:
    """Make ``serializer`` (a :class:`Serializer`) available by its name."""
    if not isinstance(serializer, Serializer):
        raise TypeError(f"register_serializer needs a strand.Serializer, got {serializer!r}")
    _SERIALIZERS[serializer.name] = serializer
    return serializer


register_serializer(Serializer("json", lambda v: json_dumps(v).encode("utf-8"),
                               lambda b: json_loads(bytes(b).decode("utf-8")), trusted=True))
register_serializer(Serializer("pickle", pickle.dumps, pickle.loads))
register_serializer(Serializer("dill", _dill_dumps, _dill_loads))
register_serializer(Serializer("cloudpickle", cloudpickle.dumps, pickle.loads))


@overload
def get_serializer(spec: str | Serializer) -> Serializer:
    ...


@overload
def get_serializer(spec: None) -> None:
    ...


@overload
def get_serializer(spec: str | Serializer | None) -> Serializer | None:
    ...


def get_serializer(spec: str | Serializer | None) -> Serializer | None:
    """A :class:`Serializer` from a registered name or a Serializer; None stays None."""
    if spec is None or isinstance(spec, Serializer):
        return spec
    if isinstance(spec, str):
        try:
            return _SERIALIZERS[spec]
        except KeyError:
            raise ValueError(f"unknown serializer {spec!r}; registered: "
                             f"{sorted(_SERIALIZERS)}") from None
    raise TypeError(f"a serializer must be a name or a strand.Serializer, got {spec!r}")


def secret_key(secret: str | bytes | bytearray | None) -> bytes | None:
    """The secret as bytes (None stays None)."""
    if secret is None:
        return None
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if not isinstance(secret, (bytes, bytearray)):
        raise TypeError(f"secret must be str or bytes, got {type(secret).__name__}")
    if len(secret) < 16:
        raise ValueError("secret must be at least 16 bytes long")
    return bytes(secret)


def _canonical_default(value: object) -> dict[str, str]:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _json_default(value)
    return {"__repr__": repr(value)}


def canonical(value: object) -> bytes:
    """Bytes that are equal for equal task data, however the store kept it
    (tuples and lists, like the JSON stores, are the same)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      default=_canonical_default).encode("utf-8")


def sign(key: bytes, value: object) -> str:
    """HMAC-SHA256 (hex) of :func:`canonical` ``(value)`` with ``key`` (bytes)."""
    return hmac.new(key, canonical(value), hashlib.sha256).hexdigest()


def verify(key: bytes, value: object, signature: object) -> bool:
    """True when ``signature`` is :func:`sign` ``(key, value)``."""
    if not isinstance(signature, str):
        return False
    return hmac.compare_digest(sign(key, value), signature)


def encode_record(record: Mapping[str, Any], key: object) -> str:
    """A task record as JSON text, for the stores that keep text."""
    try:
        return json_dumps(dict(record))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"task {key!r} cannot be stored as JSON: {exc} (pass serializer="
                        "'pickle' and a secret to StoreTaskWriter for other types)") from None
