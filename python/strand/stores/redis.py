"""RedisStore: a task store in Redis, for readers on several machines."""
import collections.abc
import copy
import itertools
import json
import logging
import os
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from ..handles import COMPLETE, ERROR, NEW, RUNNING, status_fields
from ..serialization import encode_record
from ._records import (BAD_RECORD, BadRecord, Claim, Record, StoreUnavailable, decode_record,
                       error_fields, merged, outcome_text)
from ._waiting import Subscriptions

if TYPE_CHECKING:
    from redis import Redis
    from redis.client import PubSub
    from redis.retry import Retry

log = logging.getLogger("strand")
_T = TypeVar("_T")

# Writing a record is a script so that it can be repeated after a lost reply:
# the hash remembers the nonce of the write that made it, and a repeat of
# that write changes nothing (it must not reset a task a reader already
# claimed, nor queue it twice).  A task due later waits in the delayed set.
_WRITE = """
if redis.call('HGET', KEYS[1], 'write') == ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'record', ARGV[2], 'status', ARGV[3], 'write', ARGV[1])
redis.call('ZADD', KEYS[2], 'NX', ARGV[4], ARGV[5])
if ARGV[6] == '1' then
  if ARGV[7] ~= '' and tonumber(ARGV[7]) > tonumber(ARGV[4]) then
    redis.call('ZADD', KEYS[4], ARGV[7], ARGV[5])
  else
    redis.call('XADD', KEYS[3], '*', 'id', ARGV[5])
  end
end
return 1
"""

# One round trip claims up to COUNT tasks: due delayed tasks are queued,
# expired records swept and (when asked) entries whose claim went idle for a
# lease taken over, then new entries read -- or the entries a blocking read
# just delivered are claimed.  An entry is claimed when its task is still
# new (or still held by that same, expired, delivery); anything else is a
# stale entry and is acknowledged.
# KEYS: queue, delayed, expiring, index.  ARGV: group, consumer, now,
# count, min idle ms ('' for none), token prefix, key prefix, then the
# entries delivered by a blocking read (id, task id pairs).  The reply is
# one JSON text (cjson): the client parses one string instead of five
# reply elements per task, which is most of a claim's client-side time.
_CLAIM = """
local group, consumer, now, count = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local prefix = ARGV[7]
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', KEYS[2], id)
  if redis.call('HGET', prefix .. id, 'status') == 'new' then
    redis.call('XADD', KEYS[1], '*', 'id', id)
  end
end
if ARGV[5] ~= '' then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)) do
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZREM', KEYS[4], id)
  end
end
local claimed = {}
local function claim(entry_id, task_id)
  local key = prefix .. task_id
  local fields = redis.call('HMGET', key, 'status', 'entry', 'record', 'outcome')
  local status = fields[1]
  if status == 'new' or (status == 'running' and fields[2] == entry_id) then
    local token = ARGV[6] .. entry_id
    redis.call('HSET', key, 'status', 'running', 'entry', entry_id, 'reader', consumer,
               'token', token, 'started', now)
    local attempts = redis.call('HINCRBY', key, 'attempts', 1)
    claimed[#claimed + 1] = {task_id, fields[3], fields[4] or '', attempts, token}
  else
    redis.call('XACK', KEYS[1], group, entry_id)
    redis.call('XDEL', KEYS[1], entry_id)
  end
end
if #ARGV > 7 then
  for i = 8, #ARGV, 2 do claim(ARGV[i], ARGV[i + 1]) end
else
  if ARGV[5] ~= '' then
    local reply = redis.call('XAUTOCLAIM', KEYS[1], group, consumer, ARGV[5], '0-0',
                             'COUNT', count)
    for _, entry in ipairs(reply[2]) do
      if entry[2] then claim(entry[1], entry[2][2]) end
    end
  end
  -- stale entries (cancelled, rewritten tasks) are skipped, a few rounds at most
  for _ = 1, 16 do
    if #claimed >= count then break end
    local reply = redis.call('XREADGROUP', 'GROUP', group, consumer,
                             'COUNT', count - #claimed, 'STREAMS', KEYS[1], '>')
    if not reply then break end
    for _, entry in ipairs(reply[1][2]) do claim(entry[1], entry[2][2]) end
  end
end
local due = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return cjson.encode({claimed, due[2] or ''})
"""

# Renewing re-claims each entry for the same consumer: that resets its idle
# time, so XAUTOCLAIM leaves it alone for another lease.  Returns the ids
# whose claim was lost.  ARGV: group, consumer, key prefix, then id, token pairs.
_RENEW = """
local lost = {}
for i = 4, #ARGV, 2 do
  local key = ARGV[3] .. ARGV[i]
  if redis.call('HGET', key, 'token') == ARGV[i + 1] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, redis.call('HGET', key, 'entry'),
               'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""

# ``finished_by`` keeps the token of the claim that wrote the outcome, so a
# reader that repeats a finish whose reply it lost learns that it was written.
# A retry (status new) waits in the delayed set; an outcome is published on
# the done channel, for the writers waiting for it.  One call finishes
# several tasks.  KEYS: queue, delayed, expiring.  ARGV: group, channel, key
# prefix, then one JSON text (cjson: one argument to encode, not six per
# task) of a list of [id, token, outcome, status, eta, expires (ms or '')].
# Returns one character per task, '1' if written.
_FINISH = """
local written = {}
for _, task in ipairs(cjson.decode(ARGV[4])) do
  local id, token, outcome, status, eta, expires = unpack(task)
  local key = ARGV[3] .. id
  local held = redis.call('HMGET', key, 'token', 'finished_by', 'entry')
  if held[1] ~= token then
    written[#written + 1] = held[2] == token and '1' or '0'
  else
    local entry = held[3]
    redis.call('HSET', key, 'outcome', outcome, 'status', status, 'finished_by', token)
    redis.call('HDEL', key, 'token', 'entry')
    redis.call('XACK', KEYS[1], ARGV[1], entry)
    redis.call('XDEL', KEYS[1], entry)
    if status == 'new' then
      redis.call('ZADD', KEYS[2], eta, id)
    else
      if expires ~= '' then
        redis.call('PEXPIREAT', key, expires)
        redis.call('ZADD', KEYS[3], tonumber(expires) / 1000, id)
      end
      redis.call('PUBLISH', ARGV[2], id)
    end
    written[#written + 1] = '1'
  end
end
return table.concat(written)
"""

# A claimed task that did not start goes back to the stream (its reader stops).
_GIVE_BACK = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
local entry = redis.call('HGET', KEYS[1], 'entry')
redis.call('HSET', KEYS[1], 'status', 'new')
redis.call('HDEL', KEYS[1], 'token', 'entry')
redis.call('HINCRBY', KEYS[1], 'attempts', -1)
redis.call('XACK', KEYS[2], ARGV[1], entry)
redis.call('XDEL', KEYS[2], entry)
redis.call('XADD', KEYS[2], '*', 'id', ARGV[3])
return 1
"""

# Only a task no reader claimed yet can be cancelled; its stream entry (if
# any) is acknowledged as stale when it comes up.
_CANCEL = """
if redis.call('HGET', KEYS[1], 'status') ~= 'new' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'error', 'outcome', ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return 1
"""

_REQUEUE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'error' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'new')
redis.call('HDEL', KEYS[1], 'outcome', 'token', 'entry', 'finished_by')
redis.call('PERSIST', KEYS[1])
redis.call('XADD', KEYS[2], '*', 'id', ARGV[1])
return 1
"""

# Entries delivered to a reader that stopped before claiming them go back to
# the stream as new entries.  ARGV: group, then entry id, task id pairs.
_RELEASE = """
for i = 2, #ARGV, 2 do
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  redis.call('XDEL', KEYS[1], ARGV[i])
  redis.call('XADD', KEYS[1], '*', 'id', ARGV[i + 1])
end
return 1
"""

# Seconds a watcher of outcomes lives on once nobody waits.
_WATCH_IDLE = 30.0

# The backoff of the mapping operations while the server is unreachable.
_FIRST_RETRY_DELAY = 0.05
_MAX_RETRY_DELAY = 1.0


def _redis_module() -> ModuleType:
    try:
        import redis
    except ImportError:
        raise ImportError("RedisStore needs the redis client library: pip install redis") from None
    module: ModuleType = redis  # Any when redis (an optional dependency) is not installed
    return module


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``."""
    if not isinstance(url, str):
        return url
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = urllib.parse.quote(parts.username or "", safe="")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class RedisStore(collections.abc.MutableMapping[str, Record]):
    """A ``MutableMapping`` of task id -> record kept in Redis.

    Each record is a hash (``<namespace>:task:<id>``); writing a record whose
    status is ``new`` also appends its id to a stream (``<namespace>:queue``)
    read by a consumer group, so each task is delivered to one reader (a
    record with a later ``eta`` waits in ``<namespace>:delayed`` until then).
    A reader's claim has a lease, renewed while the task runs; once a claim
    has been idle for longer than the lease (its reader died), another
    reader takes the entry over with ``XAUTOCLAIM`` and runs the task again.
    Records are stored as JSON, which never runs code when read; the claim
    and the outcome are fields of their own, so neither rewrites the record.
    A claim, a finish and a renewal of all of a reader's claims are one
    round trip each; an idle reader blocks in ``XREADGROUP BLOCK``, and the
    outcome of each task is published on ``<namespace>:done``, so writers
    waiting for results do not poll.  Not for Redis Cluster (the scripts
    reach the keys of several tasks).

    ``url`` (``redis://[:password@]host:port/db``) or ``client`` (a
    ``redis.Redis``).  Creating a store does not contact the server.

    While the server cannot be reached (it restarts, say), the mapping
    operations (writing, reading, deleting records) are retried by the
    client (redis-py's ``Retry``, backing off from 0.05 s to 1 s) for about
    ``reconnect_timeout`` seconds (None: without limit; 0: not at all) once
    the store has reached the server, and for ``startup_timeout`` seconds
    (default 0: fail at once) before it ever did; then
    :class:`strand.StoreUnavailable` (also a ``redis.exceptions.ConnectionError``)
    is raised.  Every operation is safe to repeat after a lost reply: a
    record is written and queued once.  The task-queue operations
    (``claim_tasks``...) raise at once: the reader that calls them does its
    own retrying (see ``connection_errors``).  With ``client=``, the client's
    own retry policy applies.
    """

    def __init__(self, url: str | None = None, *, client: "Redis | None" = None,
                 namespace: str = "strand", group: str = "readers",
                 reconnect_timeout: float | None = 10.0,
                 startup_timeout: float | None = 0.0) -> None:
        redis = _redis_module()
        if (url is None) == (client is None):
            raise TypeError("RedisStore needs exactly one of url= or client=")
        if client is not None and not callable(getattr(client, "register_script", None)):
            raise TypeError(f"client must be a redis.Redis, got {client!r}")
        self.url = url
        self.namespace = namespace
        self.group = group
        self.reconnect_timeout = _timeout(reconnect_timeout, "reconnect_timeout")
        self.startup_timeout = _timeout(startup_timeout, "startup_timeout")
        #: The exceptions that mean "the server cannot be reached now".
        self.connection_errors: tuple[type[Exception], ...] = (
            redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._response_error: type[Exception] = redis.exceptions.ResponseError
        self._outage = _Outage(self)
        self._reached_once = False
        # redis.Redis clients: their replies are typed as Any here, as their
        # types vary with redis-py's version (and with decode_responses)
        self._client: Any
        self._queue_client: Any
        if client is None:
            self._client = redis.Redis.from_url(url, retry=self._retry(self.startup_timeout))
            self._queue_client = redis.Redis.from_url(url, retry=redis.retry.Retry(
                redis.backoff.NoBackoff(), 0))
        else:
            self._client = self._queue_client = client
        self._owns_client = client is None
        self._closed = False
        self._queue = f"{namespace}:queue"
        self._index = f"{namespace}:tasks"
        self._delayed = f"{namespace}:delayed"
        self._expiring = f"{namespace}:expiring"
        self._channel = f"{namespace}:done"
        self._prefix = f"{namespace}:task:"
        self._scripts = {name: self._queue_client.register_script(text) for name, text in (
            ("claim", _CLAIM), ("renew", _RENEW), ("finish", _FINISH),
            ("cancel", _CANCEL), ("requeue", _REQUEUE), ("release", _RELEASE),
            ("give_back", _GIVE_BACK))}
        self._write = self._client.register_script(_WRITE)
        self._next_autoclaim: dict[str, float] = {}
        self._group_seen = False  # a missing group is news only once it existed
        self._token_base = uuid.uuid4().hex + "."
        self._claims = itertools.count()
        self._outcomes = Subscriptions(start=self._watch_outcomes)

    def _retry(self, timeout: float | None) -> "Retry":
        """A redis-py ``Retry`` lasting about ``timeout`` seconds (None: forever)."""
        redis = _redis_module()
        if timeout is None:
            retries = -1  # redis-py: retry forever
        else:
            retries, waited = 0, 0.0
            while waited < timeout:
                waited += _Backoff.delay(retries + 1)
                retries += 1
        retry: Retry = redis.retry.Retry(_Backoff(self._outage), retries,
                                         supported_errors=self.connection_errors)
        return retry

    def __getstate__(self) -> dict[str, Any]:
        if self.url is None:
            raise TypeError("a RedisStore made from client= cannot be pickled; use url=")
        return {"url": self.url, "namespace": self.namespace, "group": self.group,
                "reconnect_timeout": self.reconnect_timeout,
                "startup_timeout": self.startup_timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], namespace=state["namespace"],  # type: ignore[misc]
                      group=state["group"],
                      reconnect_timeout=state.get("reconnect_timeout", 10.0),
                      startup_timeout=state.get("startup_timeout", 0.0))

    def __repr__(self) -> str:
        where = redact(self.url) if self.url is not None else self._client
        return f"RedisStore({where!r}, namespace={self.namespace!r})"

    def close(self) -> None:
        """Close the store: any later use raises ValueError.  The connections
        are closed too, unless they came in as ``client=``."""
        self._closed = True
        if self._owns_client:
            self._client.close()
            self._queue_client.close()

    def _require_open(self) -> None:
        if self._closed:  # ValueError, as for a closed file, shelf or SqliteStore
            raise ValueError(f"{self!r} is closed; open a new RedisStore to use the server again")

    def _create_group(self) -> None:
        try:
            self._queue_client.xgroup_create(self._queue, self.group, id="0", mkstream=True)
        except self._response_error as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # --- reaching the server ---------------------------------------------------

    def _retrying(self, operation: Callable[[], _T]) -> _T:
        """``operation()`` on the retrying client; a connection error that
        outlived the retries becomes :class:`strand.StoreUnavailable`."""
        self._require_open()
        try:
            result = operation()
        except self.connection_errors as exc:
            raise self._unavailable(exc) from exc
        self._reached()
        return result

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        if self._reached_once:
            waited = "without limit" if self.reconnect_timeout is None else \
                f"for about {self.reconnect_timeout:g} s (reconnect_timeout)"
        else:
            waited = (f"for about {self.startup_timeout:g} s" if self.startup_timeout else
                      "not at all") + " (it never reached it; pass startup_timeout= to wait)"
        return unavailable_error()(f"{self!r} cannot reach its Redis server "
                                   f"({type(exc).__name__}: {exc}); it retried {waited}")

    def _reached(self) -> None:
        if not self._reached_once:
            self._reached_once = True
            if self._owns_client and self.reconnect_timeout != self.startup_timeout:
                self._client.set_retry(self._retry(self.reconnect_timeout))
        self._outage.ended()

    def _key(self, task_id: object) -> str:
        if not isinstance(task_id, str):
            raise TypeError(f"task ids in a store are strings, got {task_id!r}")
        return self._prefix + task_id

    # --- MutableMapping ----------------------------------------------------

    def __getitem__(self, task_id: str) -> Record:
        key = self._key(task_id)
        fields = self._retrying(lambda: self._client.hgetall(key))
        if not fields:
            raise KeyError(task_id)
        return _record_from_hash(fields)

    def __setitem__(self, task_id: str, record: Mapping[str, Any]) -> None:
        if not isinstance(record, collections.abc.Mapping):
            raise TypeError(f"a task record must be a mapping, got {type(record).__name__}")
        key, text = self._key(task_id), encode_record(record, task_id)
        status = str(record.get("status", ""))
        queued = "1" if status == NEW else ""
        eta = record.get("eta")
        eta = repr(float(eta)) if isinstance(eta, (int, float)) and not isinstance(eta, bool) \
            else ""
        args = [uuid.uuid4().hex, text, status, repr(time.time()), task_id, queued, eta]
        keys = [key, self._index, self._queue, self._delayed]
        self._retrying(lambda: self._write(keys=keys, args=args))

    def __delitem__(self, task_id: str) -> None:
        key = self._key(task_id)
        attempts: list[Any] = []

        def delete() -> Any:
            attempts.append(None)
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(key)
            pipe.zrem(self._index, task_id)
            pipe.zrem(self._delayed, task_id)
            return pipe.execute()[0]

        # After a failed attempt a missing record may be this call's own work.
        if self._retrying(delete) == 0 and len(attempts) == 1:
            raise KeyError(task_id)

    def __iter__(self) -> Iterator[str]:
        return iter([item.decode() for item in self._live_ids()])

    def __len__(self) -> int:
        return len(self._live_ids())

    def _live_ids(self) -> list[bytes]:
        """The index without the records that expired (and are swept now)."""
        def live() -> list[bytes]:
            expired = self._client.zrangebyscore(self._expiring, "-inf", time.time())
            if expired:
                pipe = self._client.pipeline(transaction=True)
                pipe.zrem(self._index, *expired)
                pipe.zrem(self._expiring, *expired)
                pipe.execute()
            ids: list[bytes] = self._client.zrange(self._index, 0, -1)
            return ids
        return self._retrying(live)

    def __contains__(self, task_id: object) -> bool:
        if not isinstance(task_id, str):
            return False
        key = self._key(task_id)
        return bool(self._retrying(lambda: self._client.exists(key)))

    # --- the task-queue protocol ------------------------------------------

    def claim_task(self, reader: str, lease: float | None = None) -> Claim | None:
        """Claim a task whose lease expired, else the next new one: mark it
        running and return ``(id, record, token)``, or None."""
        claims = self.claim_tasks(reader, lease, 1)
        return claims[0] if claims else None

    def claim_tasks(self, reader: str, lease: float | None = None, count: int = 1,
                    wait: float = 0.0, stop: threading.Event | None = None) -> list[Claim]:
        """Claim up to ``count`` tasks in one round trip; a list of
        ``(id, record, token)``.  With ``wait`` > 0 and none waiting, block
        in ``XREADGROUP`` up to ``wait`` seconds (or until the next delayed
        task is due) and claim what it delivers -- or, if the Event ``stop``
        was set meanwhile, queue it again for another reader."""
        self._require_open()
        now = time.time()
        min_idle = ""
        if lease is not None and now >= self._next_autoclaim.get(reader, 0.0):
            self._next_autoclaim[reader] = now + min(lease / 4, 1.0)
            min_idle = str(max(1, int(lease * 1000)))
        claims, due, refused = self._claim_script(reader, count, min_idle, [])
        while refused and not claims:  # only bad records came up: the next ones
            claims, due, refused = self._claim_script(reader, count, "", [])
        if claims or wait <= 0:
            return claims
        if due is not None:
            wait = min(wait, max(0.001, due - time.time()))
        reply = self._grouped(lambda: self._queue_client.xreadgroup(
            self.group, reader, {self._queue: ">"}, count=count,
            block=max(1, int(wait * 1000))))
        if not reply or not reply[0][1]:
            return []
        entries = [part for entry_id, fields in reply[0][1]
                   for part in (entry_id, fields.get(b"id", b""))]
        if stop is not None and stop.is_set():
            self._scripts["release"](keys=[self._queue], args=[self.group, *entries])
            return []
        return self._claim_script(reader, count, "", entries)[0]

    def _claim_script(self, reader: str, count: int, min_idle: str,
                      entries: Sequence[bytes]) -> tuple[list[Claim], float | None, int]:
        now = time.time()
        args = [self.group, reader, repr(now), count, min_idle, self._token_prefix(),
                self._prefix, *entries]
        keys = [self._queue, self._delayed, self._expiring, self._index]
        reply = self._grouped(lambda: self._scripts["claim"](keys=keys, args=args))
        self._reached()
        # surrogateescape: a record's bytes come back exactly, valid UTF-8 or not
        claimed, due = json.loads(reply.decode("utf-8", "surrogateescape"))
        claims: list[Claim] = []
        refused = 0
        for task_id, text, outcome, attempts, token in claimed or ():  # cjson: {} when empty
            try:
                record = decode_record(_raw(text))
            except BadRecord as exc:
                self._refuse(task_id, token, exc)
                refused += 1
                continue
            if outcome:
                record.update(decode_record(_raw(outcome)))
            record.update(status_fields(RUNNING), reader=reader, started=now,
                          attempts=int(attempts))
            claims.append((task_id, record, token))
        return claims, (float(due) if due else None), refused

    def _token_prefix(self) -> str:
        """Unique to one claim call: the store's random part and a count
        (a fresh uuid4 per call costs a system call)."""
        return f"{self._token_base}{os.getpid()}.{next(self._claims)}:"

    def _refuse(self, task_id: str, token: str, exc: BadRecord) -> None:
        log.warning("strand: task %s in %r cannot be run: %s; marked error", task_id, self, exc)
        self.finish_task(task_id, token, error_fields(BAD_RECORD, str(exc)))

    def _grouped(self, operation: Callable[[], _T]) -> _T:
        """``operation()``; if the stream or its group is gone (the server
        restarted without its data), recreate them and try again -- or no
        reader would ever see a task again."""
        try:
            result = operation()
            self._group_seen = True
            return result
        except self._response_error as exc:
            if "NOGROUP" not in str(exc):
                raise
        if self._group_seen:
            log.warning("strand: the queue of %s was missing (the server lost its data?); "
                        "recreated it", repr(self))
        self._create_group()
        result = operation()
        self._group_seen = True  # it exists now: losing it again is news
        return result

    def renew_task(self, task_id: str, token: str, lease: float | None = None) -> bool:
        """Reset the claim's idle time; False if the claim was lost."""
        return not self.renew_tasks([(task_id, token)], lease, reader=None)

    def renew_tasks(self, claims: Sequence[tuple[str, str]], lease: float | None = None,
                    reader: str | None = None) -> list[str]:
        """Renew ``claims`` (``(id, token)`` pairs) of the consumer ``reader``
        in one round trip; the ids of the claims that were lost."""
        self._require_open()
        if not claims:
            return []
        if reader is None:  # the one-claim form: the consumer is in the record
            reader = self._queue_client.hget(self._key(claims[0][0]), "reader")
            if reader is None:
                return [claims[0][0]]
        args = [self.group, reader, self._prefix, *[part for claim in claims for part in claim]]
        lost = self._scripts["renew"](keys=[self._queue], args=args)
        return [item.decode() for item in lost]

    def finish_task(self, task_id: str, token: str, fields: Mapping[str, Any]) -> bool:
        """Write the outcome ``fields`` and acknowledge the stream entry, if
        the claim ``token`` still owns the task: one round trip; True if
        written.  A ``status`` of ``new`` (a retry) waits until ``eta``;
        ``expires`` (epoch seconds) removes the record then."""
        return self.finish_tasks([(task_id, token, fields)])[0]

    def finish_tasks(self, outcomes: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[bool]:
        """:meth:`finish_task` for each ``(id, token, fields)`` in one round
        trip; a list of bools."""
        self._require_open()
        tasks: list[list[str]] = []
        for task_id, token, fields in outcomes:
            expires = fields.get("expires")
            tasks.append([task_id, token, outcome_text(fields), str(fields.get("status", "")),
                          repr(fields.get("eta") or 0),
                          "" if expires is None else str(int(expires * 1000))])
        # not ensure_ascii: the script gets the ids' own UTF-8 bytes
        args = [self.group, self._channel, self._prefix, json.dumps(tasks, ensure_ascii=False)]
        keys = [self._queue, self._delayed, self._expiring]
        return [done == ord("1") for done in self._scripts["finish"](keys=keys, args=args)]

    def release_task(self, task_id: str, token: str) -> bool:
        """Give a claimed task that did not start back to the queue (its
        reader stops); True if the claim still owned it."""
        self._require_open()
        return bool(self._scripts["give_back"](keys=[self._key(task_id), self._queue],
                                               args=[self.group, token, task_id]))

    def cancel_task(self, task_id: str) -> bool:
        """Mark a task no reader claimed yet ``error`` (``TaskCancelled``);
        True if it was still waiting."""
        fields = error_fields("TaskCancelled", "the task was cancelled before a reader "
                                               "claimed it")
        key = self._key(task_id)
        return bool(self._retrying(lambda: self._scripts["cancel"](
            keys=[key, self._delayed], args=[outcome_text(fields), task_id, self._channel])))

    def forget_reader(self, reader: str) -> None:
        """Remove a stopped reader's consumer from the group if it holds no
        claim (a claim it holds stays, to be recovered after its lease)."""
        self._require_open()
        self._next_autoclaim.pop(reader, None)
        pending = self._queue_client.xpending_range(self._queue, self.group, min="-", max="+",
                                                    count=1, consumername=reader)
        if not pending:
            self._queue_client.xgroup_delconsumer(self._queue, self.group, reader)

    # --- administration (the ``strand`` command) ------------------------------

    def _statuses(self) -> list[tuple[str, str]]:
        ids = [item.decode() for item in self._live_ids()]
        pipe = self._client.pipeline(transaction=False)
        for task_id in ids:
            pipe.hget(self._key(task_id), "status")
        statuses = self._retrying(pipe.execute) if ids else []
        return [(task_id, status.decode()) for task_id, status in zip(ids, statuses)
                if status is not None]

    def counts(self) -> dict[str, int]:
        """``{status: number of records}``."""
        return dict(collections.Counter(status for _, status in self._statuses()))

    def errors(self, limit: int = 10) -> list[tuple[str, Record]]:
        """The last ``limit`` failed records, newest first, as ``(id, record)``."""
        failed: list[tuple[str, Record]] = []
        for task_id, status in self._statuses():
            if status == ERROR:
                try:
                    failed.append((task_id, self[task_id]))
                except KeyError:
                    pass
        failed.sort(key=lambda item: item[1].get("finished") or 0, reverse=True)
        return failed[:limit]

    def requeue(self, task_id: str) -> bool:
        """Queue a failed task again (its outcome is dropped); True if it had failed."""
        key = self._key(task_id)
        return bool(self._retrying(lambda: self._scripts["requeue"](
            keys=[key, self._queue], args=[task_id])))

    def purge(self, statuses: Collection[str] = (COMPLETE, ERROR),
              before: float | None = None) -> int:
        """Delete the records of ``statuses`` (finished before ``before``,
        epoch seconds, if given); the number deleted."""
        deleted = 0
        for task_id, status in self._statuses():
            if status not in statuses:
                continue
            if before is not None and (self[task_id].get("finished") or 0) >= before:
                continue
            try:
                del self[task_id]
                deleted += 1
            except KeyError:
                pass
        return deleted

    # --- writers waiting for outcomes ------------------------------------------

    def outcome_waiter(self) -> Subscriptions:
        """The :class:`Subscriptions` that wake writers waiting for outcomes."""
        return self._outcomes

    def _watch_outcomes(self) -> None:
        threading.Thread(target=self._outcome_loop, daemon=True,
                         name="strand-redis-outcomes").start()

    def _outcome_loop(self) -> None:
        """Reads the done channel while writers wait; after a lost
        connection every waiter looks at its record again."""
        pubsub, idle, ended_idle = None, 0.0, False
        try:
            while not self._closed:
                try:
                    if pubsub is None:
                        pubsub = self._queue_client.pubsub(ignore_subscribe_messages=True)
                        pubsub.subscribe(self._channel)
                        self._outcomes.fire_all()  # what ended before we listened
                    message = pubsub.get_message(timeout=1.0)
                except self.connection_errors:
                    _close_quietly(pubsub)
                    pubsub = None
                    time.sleep(0.2)
                    continue
                except Exception:
                    # close() disconnects every connection of the pool, this
                    # thread's included, while it reads (redis-py then
                    # raises ValueError on the closed socket): the end.
                    if self._closed:
                        return
                    raise
                if message is not None and message.get("type") == "message":
                    self._outcomes.fire(message["data"].decode("utf-8", "replace"))
                idle = 0.0 if self._outcomes else idle + (0.0 if message else 1.0)
                if idle >= _WATCH_IDLE and self._outcomes.stop_if_idle():
                    ended_idle = True
                    return
        finally:
            if not ended_idle:
                self._outcomes.stopped()
            _close_quietly(pubsub)


def _close_quietly(pubsub: "PubSub | None") -> None:
    if pubsub is not None:
        try:
            pubsub.close()
        except Exception:
            pass


class _Outage:
    """Logs one warning when the server goes away and one when it is back.
    redis-py deep-copies the Retry of a client; the copies share this."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store
        self.since: float | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> "_Outage":
        return self

    def began(self) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.warning("strand: %s cannot reach its Redis server; retrying", repr(self._store))

    def ended(self) -> None:
        since = self.since
        if since is not None:
            self.since = None
            log.warning("strand: %s reached its Redis server again after %.1f s",
                        repr(self._store), time.monotonic() - since)


class _Backoff:
    """0.05 s doubling to 1 s between the client's attempts; the first
    failure of an outage is logged."""

    def __init__(self, outage: _Outage) -> None:
        self._outage = outage

    def __deepcopy__(self, memo: dict[int, Any]) -> "_Backoff":
        return _Backoff(copy.deepcopy(self._outage, memo))

    @staticmethod
    def delay(failures: int) -> float:
        pause: float = _FIRST_RETRY_DELAY * 2 ** (failures - 1)
        return min(pause, _MAX_RETRY_DELAY)

    def reset(self) -> None:
        """A new command: nothing to forget."""

    def compute(self, failures: int) -> float:
        """Seconds to wait before the next attempt."""
        self._outage.began()
        return self.delay(failures)


_UNAVAILABLE: list[type[StoreUnavailable]] = []


def unavailable_error() -> type[StoreUnavailable]:
    """The class raised when the server cannot be reached: a
    :class:`strand.StoreUnavailable` that is also redis-py's ConnectionError."""
    if not _UNAVAILABLE:
        redis = _redis_module()
        _UNAVAILABLE.append(type("RedisUnavailable",
                                 (StoreUnavailable, redis.exceptions.ConnectionError),
                                 {"__module__": "strand", "__doc__": StoreUnavailable.__doc__}))
    return _UNAVAILABLE[0]


def _timeout(value: float | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{what} must be None or a number of seconds >= 0, got {value!r}")
    return float(value)


def _raw(text: object) -> bytes:
    """A text of a claim's JSON reply as the bytes the hash holds."""
    return text.encode("utf-8", "surrogateescape") if isinstance(text, str) else b""


def _record_from_hash(fields: dict[bytes, bytes]) -> Record:
    claim: dict[str, Any] = {}
    if b"reader" in fields:
        claim = {"reader": fields[b"reader"].decode(),
                 "attempts": int(fields.get(b"attempts", b"0")),
                 "started": float(fields[b"started"])}
    return merged(fields[b"record"], fields.get(b"outcome"), fields[b"status"].decode(), claim)
