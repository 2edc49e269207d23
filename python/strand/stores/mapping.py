"""The task-queue protocol over any MutableMapping (a dict, say)."""
import collections.abc
import threading
import time
import uuid

from ..handles import NEW, RUNNING, status_fields

# Readers of one process claim from plain mappings under this lock: the
# status check and the write of the claim must not interleave.
_CLAIM_LOCK = threading.RLock()


def is_new(record):
    """True for a task record waiting to be claimed."""
    return isinstance(record, collections.abc.Mapping) and record.get("status") == NEW


class MappingTaskQueue:
    """Claims tasks of a plain ``MutableMapping``: each task exactly once
    among the readers of this process.  Several processes need a store that
    claims by itself (``SqliteStore``, ``RedisStore``)."""

    def __init__(self, mapping):
        if not isinstance(mapping, collections.abc.MutableMapping):
            raise TypeError(f"a task store must be a MutableMapping, got {type(mapping).__name__}")
        self.mapping = mapping

    def claim_task(self, reader, lease=None):
        """Mark the oldest new task running; ``(key, record, token)`` or None."""
        for key in self._keys():
            if not is_new(self._get(key)):
                continue
            with _CLAIM_LOCK:
                record = self._get(key)
                if not is_new(record):
                    continue
                token = uuid.uuid4().hex
                claimed = dict(record, **status_fields(RUNNING), reader=reader, claim=token,
                               started=time.time(), attempts=record.get("attempts", 0) + 1)
                self.mapping[key] = claimed
                return key, claimed, token
        return None

    def renew_task(self, key, token, lease=None):
        """Claims on a plain mapping never expire."""
        return True

    def finish_task(self, key, token, fields):
        """Merge ``fields`` into the record if this claim still owns it."""
        with _CLAIM_LOCK:
            record = self._get(key)
            if record is None or record.get("claim") != token:
                return False
            self.mapping[key] = {**record, **fields}
            return True

    def _keys(self):
        try:
            return list(self.mapping)
        except RuntimeError:  # changed size during iteration: try at the next poll
            return []

    def _get(self, key):
        try:
            return self.mapping[key]
        except KeyError:
            return None


def task_queue(store):
    """``store`` itself if it claims by itself (has ``claim_task``), else a
    :class:`MappingTaskQueue` over it."""
    if all(hasattr(store, name) for name in ("claim_task", "renew_task", "finish_task")):
        return store
    return MappingTaskQueue(store)
