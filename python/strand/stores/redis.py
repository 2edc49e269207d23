"""RedisStore: a task store in Redis, for readers on several machines."""
import collections.abc
import time
import uuid

from ..handles import NEW, RUNNING
from ..serialization import encode_record, json_loads

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

_FINISH = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
local entry = redis.call('HGET', KEYS[1], 'entry')
redis.call('HSET', KEYS[1], 'record', ARGV[3], 'status', ARGV[4])
redis.call('HDEL', KEYS[1], 'token', 'entry')
redis.call('XACK', KEYS[2], ARGV[1], entry)
redis.call('XDEL', KEYS[2], entry)
return 1
"""

# Stale stream entries skipped in one claim before giving up until the next poll.
_MAX_SKIPS = 16


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
    """

    def __init__(self, url=None, *, client=None, namespace="strand", group="readers"):
        redis = _redis_module()
        if (url is None) == (client is None):
            raise TypeError("RedisStore needs exactly one of url= or client=")
        self.url = url
        self.namespace = namespace
        self.group = group
        self._client = client if client is not None else redis.Redis.from_url(url)
        self._queue = f"{namespace}:queue"
        self._index = f"{namespace}:tasks"
        self._claim = self._client.register_script(_CLAIM)
        self._renew = self._client.register_script(_RENEW)
        self._finish = self._client.register_script(_FINISH)
        self._create_group(redis)

    def __getstate__(self):
        if self.url is None:
            raise TypeError("a RedisStore made from client= cannot be pickled; use url=")
        return {"url": self.url, "namespace": self.namespace, "group": self.group}

    def __setstate__(self, state):
        self.__init__(state["url"], namespace=state["namespace"], group=state["group"])

    def __repr__(self):
        return f"RedisStore({self.url or self._client!r}, namespace={self.namespace!r})"

    def _create_group(self, redis):
        try:
            self._client.xgroup_create(self._queue, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _key(self, task_id):
        if not isinstance(task_id, str):
            raise TypeError(f"task ids in a store are strings, got {task_id!r}")
        return f"{self.namespace}:task:{task_id}"

    # --- MutableMapping ----------------------------------------------------

    def __getitem__(self, task_id):
        fields = self._client.hgetall(self._key(task_id))
        if not fields:
            raise KeyError(task_id)
        return _record_from_hash(fields)

    def __setitem__(self, task_id, record):
        if not isinstance(record, collections.abc.Mapping):
            raise TypeError(f"a task record must be a mapping, got {type(record).__name__}")
        key, text = self._key(task_id), encode_record(record, task_id)
        status = str(record.get("status", ""))
        pipe = self._client.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping={"record": text, "status": status})
        pipe.zadd(self._index, {task_id: time.time()}, nx=True)
        if status == NEW:
            pipe.xadd(self._queue, {"id": task_id})
        pipe.execute()

    def __delitem__(self, task_id):
        pipe = self._client.pipeline(transaction=True)
        pipe.delete(self._key(task_id))
        pipe.zrem(self._index, task_id)
        if pipe.execute()[0] == 0:
            raise KeyError(task_id)

    def __iter__(self):
        return iter([item.decode() for item in self._client.zrange(self._index, 0, -1)])

    def __len__(self):
        return self._client.zcard(self._index)

    def __contains__(self, task_id):
        return isinstance(task_id, str) and bool(self._client.exists(self._key(task_id)))

    # --- the task-queue protocol ------------------------------------------

    def claim_task(self, reader, lease=None):
        """Claim a task whose lease expired, else the next new one: mark it
        running and return ``(id, record, token)``, or None."""
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
        record.update(status=RUNNING, reader=reader, started=now, attempts=int(reply[1]))
        return task_id, record, token

    def renew_task(self, task_id, token, lease=None):
        """Reset the claim's idle time; False if the claim was lost."""
        reader = self._client.hget(self._key(task_id), "reader")
        if reader is None:
            return False
        return bool(self._renew(keys=[self._key(task_id), self._queue],
                                args=[self.group, token, reader]))

    def finish_task(self, task_id, token, fields):
        """Merge ``fields`` into the record and acknowledge the stream entry,
        if the claim ``token`` still owns the task; True if written."""
        stored = self._client.hgetall(self._key(task_id))
        if stored.get(b"token", b"").decode() != token:
            return False
        record = _record_from_hash(stored)
        record.update(fields)
        text = encode_record(record, task_id)
        return bool(self._finish(keys=[self._key(task_id), self._queue],
                                 args=[self.group, token, text, str(record.get("status", ""))]))

    def forget_reader(self, reader):
        """Remove a stopped reader's consumer from the group if it holds no
        claim (a claim it holds stays, to be recovered after its lease)."""
        pending = self._client.xpending_range(self._queue, self.group, min="-", max="+",
                                              count=1, consumername=reader)
        if not pending:
            self._client.xgroup_delconsumer(self._queue, self.group, reader)


def _record_from_hash(fields):
    record = json_loads(fields[b"record"])
    record["status"] = fields[b"status"].decode()
    if b"reader" in fields:
        record["reader"] = fields[b"reader"].decode()
        record["attempts"] = int(fields.get(b"attempts", b"0"))
        record["started"] = float(fields[b"started"])
    return record
