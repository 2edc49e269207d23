"""The task-queue protocol over any MutableMapping (a dict, say)."""
import collections
import collections.abc
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, MutableMapping
from typing import Any, cast

import _lateral
import _lateral_sync

from ..handles import COMPLETE, ERROR, NEW, RUNNING, status_fields
from ._records import Claim, Record, TaskQueue, error_fields
from ._waiting import Subscriptions

# Readers of one process claim from plain mappings under this lock: the
# status check and the write of the claim must not interleave.
_CLAIM_LOCK = threading.RLock()
# Woken when a task is written to a plain mapping (by a StoreTaskWriter) or
# queued again: the idle readers of this process look again.
_CHANGED = _lateral_sync.Guard()
_generation = 0  # counts the changes; one read needs no lock
#: The writers of this process waiting for outcomes written to plain mappings.
MAPPING_OUTCOMES = Subscriptions()


def mapping_changed() -> None:
    """Wake the readers of this process waiting for tasks in a plain mapping."""
    _CHANGED.call(_count_change)


def _count_change() -> None:
    """Contract: _CHANGED held."""
    global _generation
    _generation += 1
    _CHANGED.notify_all()


def is_new(record: object, now: float | None = None) -> bool:
    """True for a task record waiting to be claimed (and due, if ``now`` is given)."""
    if not isinstance(record, collections.abc.Mapping) or record.get("status") != NEW:
        return False
    eta = record.get("eta")
    return now is None or not isinstance(eta, (int, float)) or eta <= now


class MappingTaskQueue:
    """Claims tasks of a plain ``MutableMapping``: each task exactly once
    among the readers of this process.  Several processes need a store that
    claims by itself (``SqliteStore``, ``RedisStore``)."""

    def __init__(self, mapping: MutableMapping[str, Any]) -> None:
        if not isinstance(mapping, collections.abc.MutableMapping):
            raise TypeError(f"a task store must be a MutableMapping, got {type(mapping).__name__}")
        self.mapping = mapping

    def claim_task(self, reader: str, lease: float | None = None) -> Claim | None:
        """Mark the oldest new task running; ``(key, record, token)`` or None."""
        claims = self.claim_tasks(reader, lease, 1)
        return claims[0] if claims else None

    def claim_tasks(self, reader: str, lease: float | None = None, count: int = 1,
                    wait: float = 0.0, stop: threading.Event | None = None) -> list[Claim]:
        """Claim up to ``count`` due tasks; with ``wait`` > 0 and none,
        wait up to ``wait`` seconds for a writer of this process (unless
        the Event ``stop`` is set by then)."""
        generation = _generation
        claims = self._claim_round(reader, count)
        if claims or wait <= 0:
            return claims
        due = self._next_due()
        if due is not None:
            wait = min(wait, max(0.0, due - time.time()) + 0.001)
        _CHANGED.wait_for(lambda: _generation != generation, wait)
        if stop is not None and stop.is_set():
            return []
        return self._claim_round(reader, count)

    @staticmethod
    def wake_readers() -> None:
        """Wake the readers of this process waiting in ``claim_tasks``."""
        mapping_changed()

    def _claim_round(self, reader: str, count: int) -> list[Claim]:
        claims: list[Claim] = []
        now = time.time()
        for key in self._keys():
            record = self._get(key)
            if self._expired(key, record, now) or not is_new(record, now):
                continue
            token = uuid.uuid4().hex
            claimed = self._update(key, lambda record: dict(
                record, **status_fields(RUNNING), reader=reader, claim=token, started=now,
                attempts=record.get("attempts", 0) + 1) if is_new(record, now) else None)
            if claimed is None:
                continue
            claims.append((key, claimed, token))
            if len(claims) == count:
                break
        return claims

    def _expired(self, key: str, record: object, now: float) -> bool:
        expires = record.get("expires") if isinstance(record, collections.abc.Mapping) else None
        if not isinstance(expires, (int, float)) or expires > now:
            return False
        _lateral.locked_call(_CLAIM_LOCK, self.mapping.pop, key, None)
        return True

    def _next_due(self) -> float | None:
        etas = [record.get("eta") for record in map(self._get, self._keys())
                if is_new(record) and isinstance(record.get("eta"), (int, float))]
        return min(etas) if etas else None

    def renew_task(self, key: str, token: str, lease: float | None = None) -> bool:
        """Claims on a plain mapping never expire."""
        return True

    def renew_tasks(self, claims: list[tuple[str, str]], lease: float | None = None,
                    reader: str | None = None) -> list[str]:
        """Claims on a plain mapping never expire: none is lost."""
        return []

    def finish_task(self, key: str, token: str, fields: Mapping[str, Any]) -> bool:
        """Merge ``fields`` into the record if this claim still owns it."""
        if self._update(key, lambda record: {**record, **fields, "claim": None}
                        if _claimed_by(record, token) else None) is None:
            return False
        if fields.get("status") == NEW:
            mapping_changed()
        else:
            MAPPING_OUTCOMES.fire(key)
        return True

    def release_task(self, key: str, token: str) -> bool:
        """Give a claimed task that did not start back to the queue."""
        if self._update(key, lambda record: {
                **record, **status_fields(NEW), "claim": None,
                "attempts": record.get("attempts", 1) - 1}
                if _claimed_by(record, token) else None) is None:
            return False
        mapping_changed()
        return True

    def cancel_task(self, key: str) -> bool:
        """Mark a task no reader claimed yet ``error`` (``TaskCancelled``)."""
        if self._update(key, lambda record: {**record, **error_fields(
                "TaskCancelled", "the task was cancelled before a reader claimed it")}
                if is_new(record) else None) is None:
            return False
        MAPPING_OUTCOMES.fire(key)
        return True

    def counts(self) -> dict[Any, int]:
        """``{status: number of records}`` (a hand-written record's status may
        be anything)."""
        return dict(collections.Counter(
            record.get("status") for record in map(self._get, self._keys())
            if isinstance(record, collections.abc.Mapping)))

    def errors(self, limit: int = 10) -> list[tuple[str, Mapping[str, Any]]]:
        """The last ``limit`` failed records, newest first, as ``(id, record)``."""
        failed = [(key, record) for key, record in zip(self._keys(), map(self._get, self._keys()))
                  if isinstance(record, collections.abc.Mapping) and record.get("status") == ERROR]
        failed.sort(key=lambda item: item[1].get("finished") or 0, reverse=True)
        return failed[:limit]

    def requeue(self, key: str) -> bool:
        """Queue a failed task again; True if it had failed."""
        if self._update(key, lambda record: {
                **{name: value for name, value in record.items()
                   if name not in _OUTCOME_FIELDS}, **status_fields(NEW)}
                if isinstance(record, collections.abc.Mapping)
                and record.get("status") == ERROR else None) is None:
            return False
        mapping_changed()
        return True

    def purge(self, statuses: Collection[str] = (COMPLETE, ERROR),
              before: float | None = None) -> int:
        """Delete the records of ``statuses`` (finished before ``before``); the count."""
        deleted = 0
        for key in self._keys():
            record = self._get(key)
            if not isinstance(record, collections.abc.Mapping) or \
                    record.get("status") not in statuses:
                continue
            if before is not None and (record.get("finished") or 0) >= before:
                continue
            if _lateral.locked_call(_CLAIM_LOCK, self.mapping.pop, key, None) is not None:
                deleted += 1
        return deleted

    def _keys(self) -> list[str]:
        try:
            return list(self.mapping)
        except RuntimeError:  # changed size during iteration: try at the next poll
            return []

    def _update(self, key: str, change: Callable[[Any], Record | None]) -> Record | None:
        """Write ``change(record)`` over the record of ``key`` unless it is
        None; the record written, or None.  The claim lock is taken in C:
        the program's thread cancels, requeues and finishes tasks too, where
        Ctrl-C lands, and every reader of the process needs that lock."""
        return _lateral.locked_call(_CLAIM_LOCK, self._change, key, change)

    def _change(self, key: str, change: Callable[[Any], Record | None]) -> Record | None:
        """Contract: _CLAIM_LOCK held."""
        record = change(self._get(key))
        if record is not None:
            self.mapping[key] = record
        return record

    def _get(self, key: str) -> Any:
        try:
            return self.mapping[key]
        except KeyError:
            return None


def _claimed_by(record: Any, token: str) -> bool:
    return isinstance(record, collections.abc.Mapping) and record.get("claim") == token


_OUTCOME_FIELDS = ("result", "result_signature", "error", "error_type", "error_message",
                   "finished", "claim", "expires")


def task_queue(store: MutableMapping[str, Any]) -> TaskQueue:
    """``store`` itself if it claims by itself (has ``claim_task``), else a
    :class:`MappingTaskQueue` over it."""
    if all(hasattr(store, name) for name in ("claim_task", "renew_task", "finish_task")):
        return cast(TaskQueue, store)
    return MappingTaskQueue(store)
