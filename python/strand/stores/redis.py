"""RedisStore: a task store in Redis, for readers on several machines."""
import collections.abc
import logging
import time
import uuid

from ..handles import NEW, RUNNING, status_fields
from ..serialization import encode_record, json_loads

log = logging.getLogger("strand")

# Writing a record is a script so that it can be repeated after a lost reply:
# the hash remembers the nonce of the write that made it, and a repeat of
# that write changes nothing (it must not reset a task a reader already
# claimed, nor queue it twice).
_WRITE = """
if redis.call('HGET', KEYS[1], 'write') == ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'record', ARGV[2], 'status', ARGV[3], 'write', ARGV[1])
redis.call('ZADD', KEYS[2], 'NX', ARGV[4], ARGV[5])
if ARGV[6] == '1' then redis.call('XADD', KEYS[3], '*', 'id', ARGV[5]) end
return 1
"""

# A stream entry names a task; claiming it checks the task is still new (or
# still held by that same, expired, delivery) and marks it running with a
# fresh token, atomically.  Anything else is a stale entry: acknowledge it.
_CLAIM = """
local status = redis.call('HGET', KEYS[1], 'status')
local fresh = status == 'new'
local recovered = status == 'running' and redis.call('HGET', KEYS[1], 'entry') == ARGV[2]
if not (fresh or recovered) then
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[2], ARGV[2])
  return false
end
redis.call('HSET', KEYS[1], 'status', 'running', 'entry', ARGV[2], 'reader', ARGV[3],
           'token', ARGV[4], 'started', ARGV[5])
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return {redis.call('HGET', KEYS[1], 'record'), attempts}
"""

# Renewing re-claims the entry for the same consumer: that resets its idle
# time, so XAUTOCLAIM leaves it alone for another lease.
_RENEW = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
local entry = redis.call('HGET', KEYS[1], 'entry')
redis.call('XCLAIM', KEYS[2], ARGV[1], ARGV[3], 0, entry, 'JUSTID')
return 1
"""

# ``finished_by`` keeps the token of the claim that wrote the outcome, so a
# reader that repeats a finish whose reply it lost learns that it was written.
_FINISH = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then
  if redis.call('HGET', KEYS[1], 'finished_by') == ARGV[2] then return 1 end
  return 0
end
local entry = redis.call('HGET', KEYS[1], 'entry')
redis.call('HSET', KEYS[1], 'record', ARGV[3], 'status', ARGV[4], 'finished_by', ARGV[2])
redis.call('HDEL', KEYS[1], 'token', 'entry')
redis.call('XACK', KEYS[2], ARGV[1], entry)
redis.call('XDEL', KEYS[2], entry)
return 1
"""

# Stale stream entries skipped in one claim before giving up until the next poll.
_MAX_SKIPS = 16

# Backoff between the attempts of an operation while the server is unreachable.
_FIRST_RETRY_DELAY = 0.05
_MAX_RETRY_DELAY = 1.0


def _redis_module():
    try:
        import redis
    except ImportError:
        raise ImportError("RedisStore needs the redis client library: pip install redis") from None
    return redis


class RedisStore(collections.abc.MutableMapping):
    """A ``MutableMapping`` of task id -> record kept in Redis.

    Each record is a hash (``<namespace>:task:<id>``); writing a record whose
    status is ``new`` also appends its id to a stream (``<namespace>:queue``)
    read by a consumer group, so each task is delivered to one reader.  A
    reader's claim has a lease, renewed while the task runs; once a claim
    has been idle for longer than the lease (its reader died), another
    reader takes the entry over with ``XAUTOCLAIM`` and runs the task again.
    Records are stored as JSON, which never runs code when read.

    ``url`` (``redis://host:port/db``) or ``client`` (a ``redis.Redis``).

    While the server cannot be reached (it restarts, say), the mapping
    operations (writing, reading, deleting records) try again with a backoff
    for up to ``reconnect_timeout`` seconds (None: without limit; 0: not at
    all), then raise the client's ``ConnectionError``.  Every operation is
    safe to repeat after a lost reply: a record is written and queued once.
    The task-queue operations (``claim_task``...) raise at once: the reader
    that calls them does its own retrying (see ``connection_errors``).
    """

    def __init__(self, url=None, *, client=None, namespace="strand", group="readers",
                 reconnect_timeout=10.0):
        redis = _redis_module()
        if (url is None) == (client is None):
            raise TypeError("RedisStore needs exactly one of url= or client=")
        self.url = url
        self.namespace = namespace
        self.group = group
        self.reconnect_timeout = _reconnect_timeout(reconnect_timeout)
        #: The exceptions that mean "the server cannot be reached now".
        self.connection_errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._response_error = redis.exceptions.ResponseError
        self._auth_error = redis.exceptions.AuthenticationError
        self._unreachable_since = None
        if client is not None and not callable(getattr(client, "register_script", None)):
            raise TypeError(f"client must be a redis.Redis, got {client!r}")
        self._client = client if client is not None else redis.Redis.from_url(url)
        self._owns_client = client is None
        self._closed = False
        self._queue = f"{namespace}:queue"
        self._index = f"{namespace}:tasks"
        self._write = self._client.register_script(_WRITE)
        self._claim = self._client.register_script(_CLAIM)
        self._renew = self._client.register_script(_RENEW)
        self._finish = self._client.register_script(_FINISH)
        self._retrying(self._create_group)

    def __getstate__(self):
        if self.url is None:
            raise TypeError("a RedisStore made from client= cannot be pickled; use url=")
        return {"url": self.url, "namespace": self.namespace, "group": self.group,
                "reconnect_timeout": self.reconnect_timeout}

    def __setstate__(self, state):
        self.__init__(state["url"], namespace=state["namespace"], group=state["group"],
                      reconnect_timeout=state.get("reconnect_timeout", 10.0))

    def __repr__(self):
        return f"RedisStore({self.url or self._client!r}, namespace={self.namespace!r})"

    def close(self):
        """Close the store: any later use raises ValueError.  The connection
        is closed too, unless it is a ``client=`` the caller passed in."""
        self._closed = True
        if self._owns_client:
            self._client.close()

    def _require_open(self):
        if self._closed:  # ValueError, as for a closed file, shelf or SqliteStore
            raise ValueError(f"{self!r} is closed; open a new RedisStore to use the server again")

    def _create_group(self):
        try:
            self._client.xgroup_create(self._queue, self.group, id="0", mkstream=True)
        except self._response_error as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # --- reconnecting --------------------------------------------------------

    def _retrying(self, operation):
        """``operation()``, tried again with a backoff while the server cannot
        be reached, for up to ``reconnect_timeout`` seconds."""
        self._require_open()
        deadline = None if self.reconnect_timeout is None else \
            time.monotonic() + self.reconnect_timeout
        delay = _FIRST_RETRY_DELAY
        while True:
            try:
                result = operation()
            except self.connection_errors as exc:
                if not self._may_retry(exc, deadline, delay):
                    raise
                time.sleep(delay)
                delay = min(delay * 2, _MAX_RETRY_DELAY)
            else:
                self._reached()
                return result

    def _may_retry(self, exc, deadline, delay):
        if isinstance(exc, self._auth_error):  # waiting cannot fix a password
            return False
        if deadline is not None and time.monotonic() + delay > deadline:
            return False
        if self._unreachable_since is None:
            self._unreachable_since = time.monotonic()
            limit = "without limit" if deadline is None else f"for up to {self.reconnect_timeout:g} s"
            log.warning("strand: %r cannot reach its Redis server (%s: %s); retrying %s",
                        self, type(exc).__name__, exc, limit)
        return True

    def _reached(self):
        since = self._unreachable_since
        if since is not None:
            self._unreachable_since = None
            log.warning("strand: %r reached its Redis server again after %.1f s",
                        self, time.monotonic() - since)

    def _key(self, task_id):
        if not isinstance(task_id, str):
            raise TypeError(f"task ids in a store are strings, got {task_id!r}")
        return f"{self.namespace}:task:{task_id}"

    # --- MutableMapping ----------------------------------------------------

    def __getitem__(self, task_id):
        key = self._key(task_id)
        fields = self._retrying(lambda: self._client.hgetall(key))
        if not fields:
            raise KeyError(task_id)
        return _record_from_hash(fields)

    def __setitem__(self, task_id, record):
        if not isinstance(record, collections.abc.Mapping):
            raise TypeError(f"a task record must be a mapping, got {type(record).__name__}")
        key, text = self._key(task_id), encode_record(record, task_id)
        status = str(record.get("status", ""))
        queued = "1" if status == NEW else ""
        args = [uuid.uuid4().hex, text, status, repr(time.time()), task_id, queued]
        self._retrying(lambda: self._write(keys=[key, self._index, self._queue], args=args))

    def __delitem__(self, task_id):
        key, attempts = self._key(task_id), []

        def delete():
            attempts.append(None)
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(key)
            pipe.zrem(self._index, task_id)
            return pipe.execute()[0]

        # After a failed attempt a missing record may be this call's own work.
        if self._retrying(delete) == 0 and len(attempts) == 1:
            raise KeyError(task_id)

    def __iter__(self):
        items = self._retrying(lambda: self._client.zrange(self._index, 0, -1))
        return iter([item.decode() for item in items])

    def __len__(self):
        return self._retrying(lambda: self._client.zcard(self._index))

    def __contains__(self, task_id):
        if not isinstance(task_id, str):
            return False
        key = self._key(task_id)
        return bool(self._retrying(lambda: self._client.exists(key)))

    # --- the task-queue protocol ------------------------------------------

    def claim_task(self, reader, lease=None):
        """Claim a task whose lease expired, else the next new one: mark it
        running and return ``(id, record, token)``, or None."""
        self._require_open()
        try:
            return self._claim_next(reader, lease)
        except self._response_error as exc:
            if "NOGROUP" not in str(exc):
                raise
        # The stream or its group is gone: the server restarted without its
        # data.  Recreate them, or no reader would ever see a task again.
        log.warning("strand: the queue of %r was missing (the server lost its data?); "
                    "recreated it", self)
        self._create_group()
        return self._claim_next(reader, lease)

    def _claim_next(self, reader, lease):
        for _ in range(_MAX_SKIPS):
            entry = self._expired_entry(reader, lease) or self._new_entry(reader)
            if entry is None:
                return None
            claimed = self._claim_entry(entry, reader)
            if claimed is not None:
                return claimed
        return None

    def _expired_entry(self, reader, lease):
        if lease is None:
            return None
        reply = self._client.xautoclaim(self._queue, self.group, reader,
                                        min_idle_time=max(1, int(lease * 1000)),
                                        start_id="0-0", count=1)
        entries = [entry for entry in reply[1] if entry and entry[1]]
        return entries[0] if entries else None

    def _new_entry(self, reader):
        reply = self._client.xreadgroup(self.group, reader, {self._queue: ">"}, count=1)
        if not reply or not reply[0][1]:
            return None
        return reply[0][1][0]

    def _claim_entry(self, entry, reader):
        entry_id, fields = entry
        task_id = fields[b"id"].decode()
        token, now = uuid.uuid4().hex, time.time()
        reply = self._claim(keys=[self._key(task_id), self._queue],
                            args=[self.group, entry_id, reader, token, repr(now)])
        if not reply:
            return None
        record = json_loads(reply[0])
        record.update(status_fields(RUNNING), reader=reader, started=now,
                      attempts=int(reply[1]))
        return task_id, record, token

    def renew_task(self, task_id, token, lease=None):
        """Reset the claim's idle time; False if the claim was lost."""
        self._require_open()
        reader = self._client.hget(self._key(task_id), "reader")
        if reader is None:
            return False
        return bool(self._renew(keys=[self._key(task_id), self._queue],
                                args=[self.group, token, reader]))

    def finish_task(self, task_id, token, fields):
        """Merge ``fields`` into the record and acknowledge the stream entry,
        if the claim ``token`` still owns the task; True if written."""
        self._require_open()
        stored = self._client.hgetall(self._key(task_id))
        if stored.get(b"token", b"").decode() != token:
            return stored.get(b"finished_by", b"").decode() == token  # a repeated finish
        record = _record_from_hash(stored)
        record.update(fields)
        text = encode_record(record, task_id)
        return bool(self._finish(keys=[self._key(task_id), self._queue],
                                 args=[self.group, token, text, str(record.get("status", ""))]))

    def forget_reader(self, reader):
        """Remove a stopped reader's consumer from the group if it holds no
        claim (a claim it holds stays, to be recovered after its lease)."""
        self._require_open()
        pending = self._client.xpending_range(self._queue, self.group, min="-", max="+",
                                              count=1, consumername=reader)
        if not pending:
            self._client.xgroup_delconsumer(self._queue, self.group, reader)


def _reconnect_timeout(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"reconnect_timeout must be None or a number of seconds >= 0, "
                         f"got {value!r}")
    return float(value)


def _record_from_hash(fields):
    record = json_loads(fields[b"record"])
    # The hash's status is the current one; the record's copy is as written.
    status = fields[b"status"].decode()
    record.update(status_fields(status) if "task_status" in record else {"status": status})
    if b"reader" in fields:
        record["reader"] = fields[b"reader"].decode()
        record["attempts"] = int(fields.get(b"attempts", b"0"))
        record["started"] = float(fields[b"started"])
    return record
