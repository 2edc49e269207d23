"""What the SQLite and Redis stores share: a record kept as the JSON the
writer wrote, plus the claim's columns and the outcome's JSON laid over it.

Keeping the three apart means a claim or a finish never decodes and
re-encodes the whole record: a claim writes the claim's columns, a finish
writes the outcome.
"""
import time
from collections.abc import Mapping
from typing import Any, Protocol, TypeAlias

from ..handles import ERROR, status_fields
from ..serialization import json_dumps, json_loads

#: error_type of a record that could not be decoded (bad JSON, not a dict).
BAD_RECORD = "BadRecord"

#: A task record: the decoded JSON object a writer stored, plus the fields
#: readers and stores lay over it.
Record: TypeAlias = dict[str, Any]
#: A claimed task: ``(task id, record, claim token)``.
Claim: TypeAlias = tuple[str, Record, str]


class TaskQueue(Protocol):
    """The part of the task-queue protocol every queue has (see
    :mod:`strand.stores`); the rest is looked up with ``getattr``."""

    def claim_task(self, reader: str, lease: float | None = None) -> Claim | None:
        """Claim one task: ``(id, record, token)``, or None."""

    def renew_task(self, key: str, token: str, lease: float | None = None) -> bool:
        """Extend a claim's lease; False if the claim was lost."""

    def finish_task(self, key: str, token: str, fields: Mapping[str, Any]) -> bool:
        """Merge the outcome ``fields`` if the claim still owns the task."""


class StoreUnavailable(ConnectionError):
    """A store's server could not be reached (within the store's retry
    window); the message says which store and for how long it tried."""


class BadRecord(ValueError):
    """A stored record is not the JSON text of a dict."""


def decode_record(text: str | bytes | bytearray) -> Record:
    """The dict a record's JSON text holds; BadRecord (with the reason) if not."""
    try:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")
        record = json_loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRecord(f"the record is not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise BadRecord(f"the record is a JSON {type(record).__name__}, not an object")
    return record


def merged(text: str | bytes | bytearray, outcome: str | bytes | None, status: str,
           claim: Mapping[str, Any] | None = None) -> Record:
    """The record as a reader of the store sees it: the written record (or,
    when it cannot be decoded, ``raw_record``), the outcome's fields, the
    current ``status`` and the claim's ``reader``/``attempts``/``started``."""
    try:
        record = decode_record(text)
    except BadRecord:
        record = {"raw_record": text.decode("utf-8", "replace")
                  if isinstance(text, (bytes, bytearray)) else text}
    if outcome:
        record.update(json_loads(outcome))
    # the status column is the current one; the record's copy is as written
    record.update(status_fields(status) if "task_status" in record else {"status": status})
    if claim:
        record.update(claim)
    return record


def error_fields(error_type: str, message: str, trace: str | None = None) -> Record:
    """The outcome of a task that failed or was refused."""
    return {**status_fields(ERROR), "finished": time.time(), "error_type": error_type,
            "error_message": message, "error": trace if trace is not None
            else f"{error_type}: {message}\n"}


def outcome_text(fields: Mapping[str, Any]) -> str:
    """The JSON text of an outcome; TypeError naming the problem if a value
    (the result, say) is not JSON."""
    try:
        return json_dumps(fields)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the outcome cannot be stored as JSON: {exc}") from None
