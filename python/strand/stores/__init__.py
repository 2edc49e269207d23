"""Task stores: any MutableMapping for one process, SqliteStore for the
processes of one machine, RedisStore for readers on several machines.

A store that claims tasks by itself implements the task-queue protocol:

- ``claim_task(reader, lease) -> (id, record, token) | None`` marks one new
  task (or one whose lease expired) running, atomically;
- ``renew_task(id, token, lease) -> bool`` extends a claim's lease;
- ``finish_task(id, token, fields) -> bool`` merges the outcome into the
  record if the claim still owns the task.

and, to be fast, ``claim_tasks(reader, lease, count, wait) -> [claims]``
(several per round trip, blocking up to ``wait`` seconds while none waits)
and ``renew_tasks([(id, token)...], lease, reader) -> [lost ids]``; a
reader falls back to the single forms (and to polling) without them.
``cancel_task(id)``, ``counts()``, ``errors(limit)``, ``requeue(id)`` and
``purge(statuses, before)`` serve ``task.cancel()`` and the ``strand``
command.  Any other MutableMapping is wrapped in :class:`MappingTaskQueue`.
"""
import collections.abc
import os
import urllib.parse
from typing import Any, overload

from ._records import StoreUnavailable
from ._waiting import SAFETY_INTERVAL, Subscriptions
from .mapping import MAPPING_OUTCOMES, MappingTaskQueue, mapping_changed, task_queue
from .redis import RedisStore, redact
from .sqlite import SqliteStore

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def open_store(store: collections.abc.MutableMapping[str, Any] | str | os.PathLike[str],
               ) -> collections.abc.MutableMapping[str, Any]:
    """A store from a MutableMapping (kept as is), a ``redis://``,
    ``rediss://`` or ``unix://`` URL (a :class:`RedisStore`; a ``namespace``
    query parameter names its namespace: ``redis://host:6379/0?namespace=jobs``)
    or a file path (a :class:`SqliteStore`, the embedded default)."""
    if isinstance(store, collections.abc.MutableMapping):
        return store
    if isinstance(store, str) and store.startswith(_REDIS_SCHEMES):
        url, namespace = _split_namespace(store)
        return RedisStore(url) if namespace is None else RedisStore(url, namespace=namespace)
    if isinstance(store, (str, os.PathLike)):
        return SqliteStore(store)
    raise TypeError("a task store must be a MutableMapping, a redis:// URL or an SQLite "
                    f"file path, got {type(store).__name__}: {store!r}")


def _split_namespace(url: str) -> tuple[str, str | None]:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    namespaces = [value for name, value in query if name == "namespace"]
    if not namespaces:
        return url, None
    if not namespaces[-1]:
        raise ValueError(f"the namespace in {redact(url)!r} is empty")
    rest = urllib.parse.urlencode([(name, value) for name, value in query if name != "namespace"])
    return urllib.parse.urlunsplit(parts._replace(query=rest)), namespaces[-1]


@overload
def outcome_waiter(store: collections.abc.MutableMapping[str, Any]) -> Subscriptions:
    ...


@overload
def outcome_waiter(store: object) -> Subscriptions | None:
    ...


def outcome_waiter(store: object) -> Subscriptions | None:
    """The Subscriptions that wake a writer waiting for an outcome in
    ``store`` (a plain mapping: the readers of this process)."""
    waiter = getattr(store, "outcome_waiter", None)
    if waiter is not None:
        subscriptions: Subscriptions = waiter()
        return subscriptions
    return MAPPING_OUTCOMES if isinstance(store, collections.abc.MutableMapping) else None


__all__ = ["MappingTaskQueue", "RedisStore", "SAFETY_INTERVAL", "SqliteStore",
           "StoreUnavailable", "mapping_changed", "open_store", "outcome_waiter", "task_queue"]
