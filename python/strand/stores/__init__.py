"""Task stores: any MutableMapping for one process, SqliteStore for the
processes of one machine, RedisStore for readers on several machines.

A store that claims tasks by itself implements the task-queue protocol:

- ``claim_task(reader, lease) -> (id, record, token) | None`` marks one new
  task (or one whose lease expired) running, atomically;
- ``renew_task(id, token, lease) -> bool`` extends a claim's lease;
- ``finish_task(id, token, fields) -> bool`` merges the outcome into the
  record if the claim still owns the task.

Any other MutableMapping is wrapped in :class:`MappingTaskQueue`.
"""
import collections.abc
import os

from .mapping import MappingTaskQueue, task_queue
from .redis import RedisStore
from .sqlite import SqliteStore


def open_store(store):
    """A store from a MutableMapping (kept as is), a ``redis://`` or
    ``rediss://`` URL (a :class:`RedisStore`) or a file path (a
    :class:`SqliteStore`, the embedded default)."""
    if isinstance(store, collections.abc.MutableMapping):
        return store
    if isinstance(store, str) and store.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(store)
    if isinstance(store, (str, os.PathLike)):
        return SqliteStore(store)
    raise TypeError("a task store must be a MutableMapping, a redis:// URL or an SQLite "
                    f"file path, got {type(store).__name__}: {store!r}")


__all__ = ["MappingTaskQueue", "RedisStore", "SqliteStore", "open_store", "task_queue"]
