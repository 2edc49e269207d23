"""Bad input: every public entry point of pylateral, parallel and strand is fed
wrong types, empty and huge collections, zero, negative and enormous worker
counts, booleans where ints are expected, malformed environment variables,
non-callables, unpicklable functions and arguments for the process
executors, and closed stores.

``BAD_INPUT`` has one row per case: the entry point, the bad input, the
exception expected and a regex its message must match (it names the
parameter and/or the bad value).  ``ACCEPTED_INPUT`` holds what must simply
work: empty and huge collections, lambdas for the process executors.  After
every row nothing may be left behind: no thread, no child process, no task
queued or running.  Only the documented long-lived cached pools may outlive
a call; ``baseline`` warms them up (every one of their threads started)
before taking the snapshot every row is compared with:

* strand's shared thread pool, ``strand.thread_pool()`` (docs/strand.md);
* parallel's idle thread pools, at most 4 (docs/parallel.md, "Threads");
* parallel's process pool of the default size: its worker processes and the
  pool's results thread (docs/parallel.md, "Processes");
* multiprocessing's resource tracker process, which the first 'spawn' start
  launches, and the redis-server these tests start.

Rows marked ``xfail(strict=True)`` are bugs in files this change could not
touch (``strand/reader.py``, ``strand/stores/redis.py``); each reason says
what is wrong.
"""
import asyncio
import builtins
import gc
import importlib.util
import json
import multiprocessing
import os
import re
import shelve
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from multiprocessing import resource_tracker
from pathlib import Path

import pytest

import _lateral
import parallel
import pylateral
import strand
from common_support import PATIENCE, SANITIZED, wait_until
from strand_support import add, redis_server

pytestmark = pytest.mark.timeout(120)

PACKAGES = {"pylateral": pylateral, "parallel": parallel, "strand": strand}
DOCS = Path(__file__).resolve().parent.parent / "docs"

#: The "huge collection" of the rows: a million items.
HUGE = 10 ** 6
#: Peak memory a huge row may add: a million results take ~40 MB; a
#: per-item overhead of ~500 bytes would cross this.
HUGE_MEMORY_MB = 500
#: Worker counts no machine can honour.
ENORMOUS = (10 ** 9, 2 ** 64)

ENVIRONMENT = ("PYLATERAL_WORKERS", "PYLATERAL_ENABLED", "PYLATERAL_TIMEOUT",
               "PYLATERAL_BLOCK_WHEN_SATURATED", "STRAND_WORKERS")

#: Seconds a row's leftovers may take to go away (a thread exiting, a child
#: being reaped): instant when healthy, generous for a loaded machine.
GRACE = 10.0


# --- what the rows call ----------------------------------------------------------

def double(x):
    return 2 * x


async def coroutine_double(x):
    return 2 * x


def unpicklable_lock():
    return threading.Lock()


class Resources:
    """What a row may need: a scratch directory, environment variables (put
    back after the row), a Redis server, and clean-ups that release what a
    row legitimately opened before the leftover check runs."""

    def __init__(self, tmp_path, monkeypatch, redis_url):
        self.tmp_path = tmp_path
        self._monkeypatch = monkeypatch
        self._redis_url = redis_url
        self._cleanups = []

    def path(self, name):
        return str(self.tmp_path / name)

    def setenv(self, name, value):
        self._monkeypatch.setenv(name, value)

    def later(self, cleanup):
        """Run ``cleanup()`` once the row is done (even if it failed)."""
        self._cleanups.append(cleanup)
        return cleanup

    def cleanup(self):
        while self._cleanups:
            self._cleanups.pop()()

    def redis_url(self):
        if self._redis_url is None:
            pytest.skip("redis-server or the redis client library is not installed")
        return self._redis_url

    def redis_store(self):
        """A RedisStore on the test server, in a namespace of its own."""
        return strand.RedisStore(self.redis_url(), namespace=f"bad-input-{uuid.uuid4().hex}")

    def sqlite_store(self):
        return strand.SqliteStore(self.path(f"{uuid.uuid4().hex}.db"))

    def closed_sqlite_store(self):
        store = self.sqlite_store()
        store.close()
        return store

    def closed_shelf(self):
        """A closed ``shelve.Shelf``: a MutableMapping used as a task store."""
        shelf = shelve.open(self.path(f"{uuid.uuid4().hex}.shelf"))
        shelf.close()
        return shelf


def strand_pool_in_child(value):
    """``strand.thread_pool()`` in a fresh interpreter whose STRAND_WORKERS is
    ``value`` (this process's pool already exists); re-raises its error here.
    The child must not have started a thread either."""
    code = (
        "import json, threading, strand\n"
        "try:\n"
        "    strand.thread_pool(); error = None\n"
        "except Exception as exc:\n"
        "    error = [type(exc).__name__, str(exc)]\n"
        "print(json.dumps({'error': error,\n"
        "                  'threads': [t.name for t in threading.enumerate()]}))\n")
    env = dict(os.environ, STRAND_WORKERS=value)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip(), done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["threads"] == ["MainThread"], report
    if report["error"] is not None:
        name, message = report["error"]
        raise getattr(builtins, name)(message)


def in_pool(action, max_workers=2):
    """``action(pool)`` inside ``pylateral.task_pool(max_workers)``."""
    def run(res):
        with pylateral.task_pool(max_workers=max_workers) as pool:
            action(pool)
    return run


def task_called_without_its_argument(res):
    @pylateral.task
    def load(record_id):
        pass  # pragma: no cover - the call fails before

    with pylateral.task_pool(max_workers=2):
        load()


def task_returning_a_value(res):
    @pylateral.task
    def compute():
        return 5

    with pylateral.task_pool(max_workers=2):
        compute()


def join_closed_pool(res):
    with pylateral.task_pool(max_workers=1) as pool:
        pass
    pool.join()


def nested_task_pool(res):
    with pylateral.task_pool(max_workers=1):
        with pylateral.task_pool(max_workers=1):
            pass  # pragma: no cover


def task_group_join(timeout):
    def run(res):
        with pylateral.task_group() as group:
            group.join(timeout)
    return run


def async_results(timeout):
    def run(res):
        with parallel.async_map(double, [1, 2]) as execution:
            execution.results(timeout)
    return run


def process_map_closing_over_a_lock(res):
    lock = threading.Lock()
    return parallel.process.map(lambda x: (lock, x)[1], [1])


def thread_handle(method, timeout):
    def run(res):
        handle = strand.ThreadTaskrunner(double)(1)
        res.later(lambda: handle.join(PATIENCE))
        getattr(handle, method)(timeout)
    return run


def process_handle_result(timeout):
    def run(res):
        handle = strand.MultiprocessTaskrunner(double)(1)
        res.later(lambda: handle.join(PATIENCE))
        handle.result(timeout)
    return run


def spawn_runner(func, *args, **kwargs):
    def run(res):
        strand.MultiprocessTaskrunner(func, mp_context="spawn")(*args, **kwargs)
    return run


def spawn_lock_closure(res):
    lock = threading.Lock()

    def locked(x):
        with lock:  # pragma: no cover - never sent: a lock cannot be pickled
            return x

    strand.MultiprocessTaskrunner(locked, mp_context="spawn")(1)


def process_result_unpicklable(res):
    handle = strand.MultiprocessTaskrunner(unpicklable_lock, mp_context="fork")()
    handle.result(PATIENCE)


def asyncio_handle_join(timeout):
    def run(res):
        async def main():
            dispatched = strand.dispatch(coroutine_double, [1], target="coroutine")
            try:
                dispatched.handles[0].join(timeout)
            finally:
                await dispatched
        asyncio.run(main())
    return run


def completed_handle_result(timeout):
    def run(res):
        strand.dispatch(double, [1], target="sync").handles[0].result(timeout)
    return run


def dispatch_wait(method, timeout):
    def run(res):
        dispatched = strand.dispatch(double, [1])
        res.later(lambda: dispatched.wait(PATIENCE))
        getattr(dispatched, method)(timeout)
    return run


def store_write(make_store, key, record):
    def run(res):
        make_store(res)[key] = record
    return run


def writer_call(make_store, *args):
    def run(res):
        strand.StoreTaskWriter(add, make_store(res))(*args)
    return run


def store_task_result(timeout):
    def run(res):
        strand.StoreTaskWriter(add, {})(1, 2).result(timeout)
    return run


def store_task_result_after_close(res):
    shelf = shelve.open(res.path("tasks.shelf"))
    task = strand.StoreTaskWriter(add, shelf)(1, 2)
    shelf.close()
    task.result(0)


def reader_run_once(make_store):
    def run(res):
        strand.StoreTaskReader(make_store(res)).run_once()
    return run


def reader_stop(timeout):
    def run(res):
        reader = strand.StoreTaskReader({}).listen()
        res.later(reader.stop)
        reader.stop(timeout)
    return run


def reader_run_pending(limit):
    def run(res):
        strand.StoreTaskReader({}).run_pending(limit)
    return run


def closed_redis_store(res):
    store = res.redis_store()
    store.close()
    store["task"] = {"status": "new"}


def sqlite_store_in_a_directory(res):
    strand.open_store(str(res.tmp_path))


# --- the table ------------------------------------------------------------------


def bad(entry, bad_input, call, raises, match, xfail=None):
    """One row: ``call(res)`` must raise ``raises`` with a message matching
    ``match``."""
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(entry, call, raises, match, id=f"{entry}: {bad_input}", marks=marks)


def each_enormous(entry, call_with):
    """Rows for ``call_with(n)`` with every enormous worker count."""
    return [bad(entry, f"max_workers={n}", lambda res, n=n: call_with(n), ValueError,
                rf"max_workers must be at most \d+, got {n}") for n in ENORMOUS]


PYLATERAL_ROWS = [
    bad("pylateral.task_pool", "max_workers=0", lambda res: pylateral.task_pool(0),
        ValueError, r"max_workers must be greater than 0, got 0"),
    bad("pylateral.task_pool", "max_workers=-3", lambda res: pylateral.task_pool(-3),
        ValueError, r"max_workers .* got -3"),
    bad("pylateral.task_pool", "max_workers=True", lambda res: pylateral.task_pool(True),
        TypeError, r"max_workers must be an int, got True"),
    bad("pylateral.task_pool", "max_workers=2.5", lambda res: pylateral.task_pool(2.5),
        TypeError, r"max_workers must be an int, got 2.5"),
    bad("pylateral.task_pool", "max_workers='4'", lambda res: pylateral.task_pool("4"),
        TypeError, r"max_workers must be an int, got '4'"),
    *each_enormous("pylateral.task_pool", lambda n: pylateral.task_pool(max_workers=n)),
    bad("pylateral.task_pool", "timeout=-1", lambda res: pylateral.task_pool(timeout=-1),
        ValueError, r"timeout must be a non-negative number of seconds, got -1"),
    bad("pylateral.task_pool", "timeout=nan",
        lambda res: pylateral.task_pool(timeout=float("nan")), ValueError, r"timeout .* nan"),
    bad("pylateral.task_pool", "timeout='10'", lambda res: pylateral.task_pool(timeout="10"),
        TypeError, r"timeout must be a number of seconds or None, got '10'"),
    bad("pylateral.task_pool", "timeout=True", lambda res: pylateral.task_pool(timeout=True),
        TypeError, r"timeout .* got True"),
    bad("pylateral.task_pool", "halt_on_error='no'",
        lambda res: pylateral.task_pool(halt_on_error="no"),
        TypeError, r"halt_on_error must be True or False, got 'no'"),
    bad("pylateral.task_pool", "a second pool while one is open", nested_task_pool,
        pylateral.TaskPoolAlreadyAllocated, r"already open"),
    *[bad("pylateral.task_pool", f"PYLATERAL_WORKERS={value!r}",
          lambda res, value=value: (res.setenv("PYLATERAL_WORKERS", value),
                                    pylateral.task_pool()),
          ValueError, rf"PYLATERAL_WORKERS .*{re.escape(repr(value))}")
      for value in ("many", "0", "-2", "2.5", str(10 ** 9), str(2 ** 64))],
    bad("pylateral.task_pool", "PYLATERAL_ENABLED='maybe'",
        lambda res: (res.setenv("PYLATERAL_ENABLED", "maybe"), pylateral.task_pool()),
        ValueError, r"PYLATERAL_ENABLED must be true or false .*'maybe'"),
    *[bad("pylateral.task_pool", f"PYLATERAL_TIMEOUT={value!r}",
          lambda res, value=value: (res.setenv("PYLATERAL_TIMEOUT", value),
                                    pylateral.task_pool()),
          ValueError, rf"PYLATERAL_TIMEOUT must be .*{re.escape(repr(value))}")
      for value in ("soon", "-1", "nan")],
    bad("pylateral.task_pool", "PYLATERAL_BLOCK_WHEN_SATURATED='maybe'",
        lambda res: (res.setenv("PYLATERAL_BLOCK_WHEN_SATURATED", "maybe"),
                     pylateral.task_pool()),
        ValueError, r"PYLATERAL_BLOCK_WHEN_SATURATED must be true or false .*'maybe'"),
    bad("pylateral.TaskPool", "max_workers=0", lambda res: pylateral.TaskPool(max_workers=0),
        ValueError, r"max_workers .* got 0"),
    bad("pylateral.TaskPool.join", "timeout=-5", in_pool(lambda pool: pool.join(-5)),
        ValueError, r"timeout .* got -5"),
    bad("pylateral.TaskPool.join", "timeout='soon'", in_pool(lambda pool: pool.join("soon")),
        TypeError, r"timeout .* got 'soon'"),
    bad("pylateral.TaskPool.join", "a pool never entered",
        lambda res: pylateral.task_pool().join(), RuntimeError, r"has not been entered"),
    bad("pylateral.TaskPool.join", "a closed pool", join_closed_pool,
        RuntimeError, r"the task pool is closed"),
    bad("pylateral.join", "timeout=-1 with no pool open", lambda res: pylateral.join(-1),
        ValueError, r"timeout .* got -1"),
    bad("pylateral.join", "timeout='x' with no pool open", lambda res: pylateral.join("x"),
        TypeError, r"timeout .* got 'x'"),
    bad("pylateral.join", "timeout=-1 in a pool", in_pool(lambda pool: pylateral.join(-1)),
        ValueError, r"timeout .* got -1"),
    bad("pylateral.task", "an int", lambda res: pylateral.task(5),
        TypeError, r"@pylateral.task needs a callable, got int"),
    bad("pylateral.task", "a str, through task()", lambda res: pylateral.task()("load"),
        TypeError, r"needs a callable, got str"),
    bad("pylateral.task", "a call without its argument", task_called_without_its_argument,
        TypeError, r"load\(\) missing 1 required positional argument: 'record_id'"),
    bad("pylateral.task", "a value returned without has_return_value", task_returning_a_value,
        pylateral.UnexpectedReturnValueError, r"task \S*compute \(.*\) returned a value \(int\)"),
    bad("pylateral.task_group", "join(timeout='x')", task_group_join("x"),
        TypeError, r"timeout .* got 'x'"),
    bad("pylateral.cache_result", "scope=True", lambda res: pylateral.cache_result(True),
        ValueError, r"cache_result scope must be .* got True"),
    bad("pylateral.cache_result", "scope='thread'", lambda res: pylateral.cache_result("thread"),
        ValueError, r"scope .* got 'thread'"),
    bad("pylateral.cache_result", "scope=9", lambda res: pylateral.cache_result(9),
        ValueError, r"scope .* got 9"),
    bad("pylateral.cache_result", "a non-callable", lambda res: pylateral.cache_result()(5),
        TypeError, r"cache_result needs a callable, got int"),
    bad("pylateral.cache_result", "an unhashable argument",
        lambda res: pylateral.cache_result()(double)([1]),
        TypeError, r"hashable arguments: unhashable type: 'list'"),
    bad("pylateral.CacheScopes", "9", lambda res: pylateral.CacheScopes(9),
        ValueError, r"9 is not a valid CacheScopes"),
    bad("pylateral.checkpoint", "an argument", lambda res: pylateral.checkpoint(1),
        TypeError, r"checkpoint\(\) takes no arguments"),
]

PARALLEL_ROWS = [
    bad("parallel.map", "a non-callable", lambda res: parallel.map(5, [1]),
        TypeError, r"parallel.map needs a callable first, got 5"),
    bad("parallel.map", "params=5", lambda res: parallel.map(double, 5),
        TypeError, r"needs a sequence or a dict of parameters, got int"),
    bad("parallel.map", "params='abc'", lambda res: parallel.map(double, "abc"),
        TypeError, r"got str 'abc'; wrap one parameter in a list"),
    bad("parallel.map", "params=None", lambda res: parallel.map(double, None),
        TypeError, r"parameters, got NoneType"),
    bad("parallel.map", "max_workers=0", lambda res: parallel.map(double, [1], max_workers=0),
        ValueError, r"max_workers must be greater than 0, got 0"),
    bad("parallel.map", "max_workers=-1", lambda res: parallel.map(double, [1], max_workers=-1),
        ValueError, r"max_workers .* got -1"),
    bad("parallel.map", "max_workers=True",
        lambda res: parallel.map(double, [1], max_workers=True),
        TypeError, r"max_workers must be an int, got True"),
    bad("parallel.map", "max_workers='4'", lambda res: parallel.map(double, [1], max_workers="4"),
        TypeError, r"max_workers must be an int, got '4'"),
    *each_enormous("parallel.map", lambda n: parallel.map(double, [1], max_workers=n)),
    bad("parallel.map", "timeout=-1", lambda res: parallel.map(double, [1], timeout=-1),
        ValueError, r"timeout .* got -1"),
    bad("parallel.map", "timeout='1'", lambda res: parallel.map(double, [1], timeout="1"),
        TypeError, r"timeout .* got '1'"),
    bad("parallel.map", "timeout=True", lambda res: parallel.map(double, [1], timeout=True),
        TypeError, r"timeout .* got True"),
    bad("parallel.map", "executor='bogus'",
        lambda res: parallel.map(double, [1], executor="bogus"),
        ValueError, r"executor must be .* got 'bogus'"),
    bad("parallel.map", "executor=5", lambda res: parallel.map(double, [1], executor=5),
        TypeError, r"executor must be .* got int"),
    bad("parallel.map", "executor=True", lambda res: parallel.map(double, [1], executor=True),
        TypeError, r"executor must be .* got bool"),
    bad("parallel.map", "extras=5", lambda res: parallel.map(double, [1], extras=5),
        TypeError, r"extras must be a dict of keyword arguments, got 5"),
    bad("parallel.map", "extras={1: 2}", lambda res: parallel.map(double, [1], extras={1: 2}),
        TypeError, r"extras keys must be argument names \(str\), got 1"),
    bad("parallel.par", "params=5", lambda res: parallel.par(5),
        TypeError, r"parallel.par needs a sequence or a dict of parameters, got int"),
    bad("parallel.par", "a non-callable entry", lambda res: parallel.par([double, 5]),
        TypeError, r"parallel.par: entry 1 must be parallel.future.* got 5"),
    bad("parallel.par", "a non-callable entry by key", lambda res: parallel.par({"a": 5}),
        TypeError, r"entry 'a' must be .* got 5"),
    bad("parallel.par", "params='abc'", lambda res: parallel.par("abc"),
        TypeError, r"got str 'abc'"),
    *each_enormous("parallel.par", lambda n: parallel.par([double], max_workers=n)),
    bad("parallel.async_map", "params=5", lambda res: parallel.async_map(double, 5),
        TypeError, r"parallel.async_map needs a sequence or a dict of parameters, got int"),
    bad("parallel.async_map", "max_workers=0",
        lambda res: parallel.async_map(double, [1], max_workers=0),
        ValueError, r"max_workers .* got 0"),
    bad("parallel.async_par", "a non-callable entry", lambda res: parallel.async_par([5]),
        TypeError, r"parallel.async_par: entry 0 must be .* got 5"),
    bad("parallel.async_par", "timeout=-2", lambda res: parallel.async_par([double], timeout=-2),
        ValueError, r"timeout .* got -2"),
    bad("parallel.AsyncExecution.results", "timeout=-1", async_results(-1),
        ValueError, r"timeout .* got -1"),
    bad("parallel.AsyncExecution.results", "timeout='x'", async_results("x"),
        TypeError, r"timeout .* got 'x'"),
    bad("parallel.thread.map", "max_workers=0",
        lambda res: parallel.thread.map(double, [1], max_workers=0),
        ValueError, r"max_workers .* got 0"),
    bad("parallel.thread.par", "timeout='x'",
        lambda res: parallel.thread.par([double], timeout="x"),
        TypeError, r"timeout .* got 'x'"),
    bad("parallel.process.map", "max_workers=0",
        lambda res: parallel.process.map(double, [1], max_workers=0),
        ValueError, r"max_workers .* got 0"),
    # Without the limit, max_workers=10**9 would fork until the machine gave out.
    *each_enormous("parallel.process.map",
                   lambda n: parallel.process.map(double, [1], max_workers=n)),
    bad("parallel.process.map", "an unpicklable parameter",
        lambda res: parallel.process.map(double, [1, threading.Lock()]),
        parallel.exceptions.SerializationError,
        r"parallel.map: parameter 1 cannot be pickled .*_thread.lock"),
    bad("parallel.process.map", "unpicklable extras",
        lambda res: parallel.process.map(double, [1], extras={"lock": threading.Lock()}),
        parallel.exceptions.SerializationError, r"extras cannot be pickled"),
    bad("parallel.process.map", "a lambda closing over a lock", process_map_closing_over_a_lock,
        parallel.exceptions.SerializationError, r"the function .*<lambda>.* cannot be pickled"),
    bad("parallel.process.map", "an unpicklable return value",
        lambda res: parallel.process.map(unpicklable_lock, [()]),
        parallel.exceptions.SerializationError,
        r"return value of this call \(lock\) cannot be pickled back"),
    bad("parallel.process.par", "an unpicklable argument",
        lambda res: parallel.process.par([(double, threading.Lock())]),
        parallel.exceptions.SerializationError, r"parallel.par: parameter 0 cannot be pickled"),
    bad("parallel.process.async_map", "params=5",
        lambda res: parallel.process.async_map(double, 5), TypeError, r"got int"),
    bad("parallel.ExecutorNamespace", "executor='bogus'",
        lambda res: parallel.ExecutorNamespace("bogus"),
        ValueError, r"executor must be .* got 'bogus'"),
    bad("parallel.future", "a non-callable", lambda res: parallel.future(5),
        TypeError, r"parallel.future needs a callable first, got 5"),
    bad("parallel.decorate", "a non-callable", lambda res: parallel.decorate(5),
        TypeError, r"@parallel.decorate needs a function, got 5"),
    bad("parallel.decorate", "executor='bogus'", lambda res: parallel.decorate(executor="bogus"),
        ValueError, r"executor must be .* got 'bogus'"),
    bad("parallel.decorate", "max_workers=True", lambda res: parallel.decorate(max_workers=True),
        TypeError, r"max_workers must be an int, got True"),
    bad("parallel.decorate", "timeout=-1", lambda res: parallel.decorate(timeout=-1),
        ValueError, r"timeout .* got -1"),
    *each_enormous("parallel.decorated", lambda n: parallel.decorated(max_workers=n)),
    bad("parallel.ParallelFunction", "a non-callable",
        lambda res: parallel.ParallelFunction(5, {}),
        TypeError, r"ParallelFunction needs a callable, got 5"),
    bad("parallel.ParallelFunction.map", "params=5", lambda res: parallel.decorate(double).map(5),
        TypeError, r"double.map needs a sequence or a dict of parameters, got int"),
    bad("parallel.ParallelFunction.process.map", "an unpicklable parameter",
        lambda res: parallel.decorate(double).process.map([threading.Lock()]),
        parallel.exceptions.SerializationError, r"double.map: parameter 0 cannot be pickled"),
    bad("parallel.ParallelFunction.thread.async_map", "max_workers=0",
        lambda res: parallel.decorate(double).thread.async_map([1], max_workers=0),
        ValueError, r"max_workers .* got 0"),
    bad("parallel.FailedTask", "params=5", lambda res: parallel.FailedTask(params=5),
        TypeError, r"FailedTask needs params= .* got params=5"),
    bad("parallel.FailedTask", "kwargs=5", lambda res: parallel.FailedTask(kwargs=5),
        TypeError, r"kwargs=5"),
    bad("parallel.split", "collection=5", lambda res: parallel.split(5, double),
        TypeError, r"split needs a list, a tuple or another sequence, got int"),
    bad("parallel.split", "workers=0", lambda res: parallel.split([1], double, workers=0),
        ValueError, r"workers must be greater than 0, got 0"),
    bad("parallel.split", "a non-callable", lambda res: parallel.split([1], 5),
        TypeError, r"parallel.split needs a callable first, got 5"),
    bad("parallel.split", "a chunk's result that is no list",
        lambda res: parallel.split([1, 2], len, workers=2),
        TypeError, r"parallel.split: .*len.* must return a list"),
    bad("parallel.split", "timeout='x'", lambda res: parallel.thread.split([1], double, timeout="x"),
        TypeError, r"timeout .* got 'x'"),
    bad("parallel.job", "a non-callable", lambda res: parallel.job(5),
        TypeError, r"parallel.future needs a callable first, got 5"),
    bad("parallel.ParallelJob", "a non-callable", lambda res: parallel.ParallelJob(5),
        TypeError, r"ParallelJob needs a callable \(or None\), got 5"),
    bad("parallel.ParallelStatus", "'bogus'", lambda res: parallel.ParallelStatus("bogus"),
        ValueError, r"'bogus' is not a valid ParallelStatus"),
    bad("parallel.ThreadExecutor", "ResultClass=list",
        lambda res: parallel.ThreadExecutor([], ResultClass=list),
        TypeError, r"ResultClass must be ListResult or DictResult .* got <class 'list'>"),
    bad("parallel.ThreadExecutor", "a non-callable job", lambda res: parallel.ThreadExecutor([5]),
        TypeError, r"ThreadExecutor: entry 0 must be parallel.future.* got 5"),
    bad("parallel.ThreadExecutor", "max_workers=0",
        lambda res: parallel.ThreadExecutor([], max_workers=0),
        ValueError, r"max_workers .* got 0"),
    bad("parallel.ThreadExecutor", "timeout=-1", lambda res: parallel.ThreadExecutor([], timeout=-1),
        ValueError, r"timeout .* got -1"),
    bad("parallel.ThreadExecutor.results", "before start()",
        lambda res: parallel.ThreadExecutor([parallel.job(double, 1)]).results(),
        parallel.exceptions.ParallelStatusException, r"has not been started: call start\(\)"),
    bad("parallel.ProcessExecutor", "max_workers=0",
        lambda res: parallel.ProcessExecutor([], max_workers=0),
        ValueError, r"max_workers .* got 0"),
    bad("parallel.BaseParallelExecutor", "ResultClass=5",
        lambda res: parallel.BaseParallelExecutor([], ResultClass=5),
        TypeError, r"ResultClass must be .* got 5"),
    bad("parallel.SequentialMapResult", "5", lambda res: parallel.SequentialMapResult(5),
        TypeError, r"'int' object is not iterable"),
    bad("parallel.NamedMapResult", "5", lambda res: parallel.NamedMapResult(5),
        TypeError, r"'int' object is not iterable"),
    bad("parallel.ListResult", "5", lambda res: parallel.ListResult(5),
        TypeError, r"'int' object is not iterable"),
    bad("parallel.DictResult", "5", lambda res: parallel.DictResult(5),
        TypeError, r"'int' object is not iterable"),
]

STRAND_ROWS = [
    bad("strand.Taskrunner", "a non-callable", lambda res: strand.Taskrunner(5),
        TypeError, r"the function of Taskrunner must be callable, got int: 5"),
    bad("strand.Taskrunner", "on_iter=5", lambda res: strand.Taskrunner(double, on_iter=5),
        TypeError, r"on_iter must be callable, got int"),
    bad("strand.Taskrunner", "on_end='x'", lambda res: strand.Taskrunner(double, on_end="x"),
        TypeError, r"on_end must be callable, got str"),
    bad("strand.Taskrunner", "on_error=1", lambda res: strand.Taskrunner(double, on_error=1),
        TypeError, r"on_error must be callable, got int"),
    bad("strand.Taskrunner", "a keyword given twice",
        lambda res: strand.Taskrunner(add, 1, b=2)(b=3),
        TypeError, r"add\(\) got multiple values for keyword argument 'b'"),
    bad("strand.ThreadTaskrunner", "a non-callable", lambda res: strand.ThreadTaskrunner(None),
        TypeError, r"the function of ThreadTaskrunner must be callable, got NoneType"),
    bad("strand.ThreadTaskrunner", "a coroutine function",
        lambda res: strand.ThreadTaskrunner(coroutine_double),
        TypeError, r"coroutine_double is a coroutine function"),
    bad("strand.TaskHandle.join", "timeout=-1", thread_handle("join", -1),
        ValueError, r"timeout .* got -1"),
    bad("strand.TaskHandle.result", "timeout='x'", thread_handle("result", "x"),
        TypeError, r"timeout .* got 'x'"),
    bad("strand.TaskHandle.exception", "timeout=True", thread_handle("exception", True),
        TypeError, r"timeout .* got True"),
    bad("strand.MultiprocessTaskrunner", "a non-callable",
        lambda res: strand.MultiprocessTaskrunner(5),
        TypeError, r"the function of MultiprocessTaskrunner must be callable"),
    bad("strand.MultiprocessTaskrunner", "mp_context='bogus'",
        lambda res: strand.MultiprocessTaskrunner(double, mp_context="bogus"),
        ValueError, r"mp_context must be one of .* got 'bogus'"),
    bad("strand.MultiprocessTaskrunner", "mp_context=5",
        lambda res: strand.MultiprocessTaskrunner(double, mp_context=5),
        TypeError, r"mp_context must be .* got 5"),
    bad("strand.MultiprocessTaskrunner", "mp_context=True",
        lambda res: strand.MultiprocessTaskrunner(double, mp_context=True),
        TypeError, r"mp_context must be .* got True"),
    bad("strand.MultiprocessTaskrunner", "a function closing over a lock, spawn",
        spawn_lock_closure, TypeError,
        r"cannot send the function of locked\(\) to a 'spawn' child process"),
    bad("strand.MultiprocessTaskrunner", "an unpicklable argument, spawn",
        spawn_runner(add, threading.Lock()),
        TypeError, r"cannot send the arguments of add\(\) .*_thread.lock"),
    bad("strand.MultiprocessTaskrunner", "an unpicklable keyword argument, spawn",
        spawn_runner(add, 1, b=threading.Lock()),
        TypeError, r"cannot send the keyword arguments of add\(\)"),
    bad("strand.MultiprocessTaskrunner", "an unpicklable result", process_result_unpicklable,
        TypeError, r"the result of unpicklable_lock\(\) cannot be sent back"),
    bad("strand.ProcessTaskHandle.result", "timeout='x'", process_handle_result("x"),
        TypeError, r"timeout .* got 'x'"),
    bad("strand.CoroutineTaskrunner", "a non-callable", lambda res: strand.CoroutineTaskrunner(5),
        TypeError, r"the function of CoroutineTaskrunner must be callable"),
    bad("strand.CoroutineTaskrunner", "on_end=5",
        lambda res: strand.CoroutineTaskrunner(coroutine_double, on_end=5),
        TypeError, r"on_end must be callable, got int"),
    bad("strand.AsyncioHandle.join", "timeout='x'", asyncio_handle_join("x"),
        TypeError, r"timeout .* got 'x'"),
    bad("strand.CompletedHandle.result", "timeout=-1", completed_handle_result(-1),
        ValueError, r"timeout .* got -1"),
    bad("strand.as_task", "target='bogus'", lambda res: strand.as_task("bogus"),
        ValueError, r"unknown taskrunner target 'bogus'; use one of 'thread'"),
    bad("strand.as_task", "target=5", lambda res: strand.as_task(5),
        ValueError, r"unknown taskrunner target 5"),
    bad("strand.as_task", "target=True", lambda res: strand.as_task(True),
        ValueError, r"unknown taskrunner target True"),
    bad("strand.as_task", "a non-callable", lambda res: strand.as_task()(5),
        TypeError, r"must be callable, got int"),
    bad("strand.as_task", "on_iter=5", lambda res: strand.as_task(on_iter=5)(double),
        TypeError, r"on_iter must be callable, got int"),
    bad("strand.as_task", "'store' called before its store is set",
        lambda res: strand.as_task("store")(add)(1, 2),
        ValueError, r"has no store yet: set writer.store"),
    bad("strand.dispatch", "a non-callable", lambda res: strand.dispatch(5, [1]),
        TypeError, r"must be callable, got int"),
    bad("strand.dispatch", "items=5", lambda res: strand.dispatch(double, 5),
        TypeError, r"dispatch needs an iterable of items, got int"),
    bad("strand.dispatch", "target='bogus'",
        lambda res: strand.dispatch(double, [1], target="bogus"),
        ValueError, r"unknown taskrunner target 'bogus'"),
    bad("strand.Dispatch", "runner=5", lambda res: strand.Dispatch(5),
        TypeError, r"Dispatch needs a strand Taskrunner, got 5"),
    bad("strand.Dispatch.wait", "timeout='x'", dispatch_wait("wait", "x"),
        TypeError, r"timeout .* got 'x'"),
    bad("strand.Dispatch.wait", "timeout=-1", dispatch_wait("wait", -1),
        ValueError, r"timeout .* got -1"),
    bad("strand.Dispatch.result", "timeout=True", dispatch_wait("result", True),
        TypeError, r"timeout .* got True"),
    *[bad("strand.thread_pool", f"STRAND_WORKERS={value!r}",
          lambda res, value=value: strand_pool_in_child(value),
          ValueError, rf"STRAND_WORKERS .*{re.escape(repr(value))}")
      for value in ("many", "0", "-1", str(10 ** 9))],
    bad("strand.Serializer", "name=5", lambda res: strand.Serializer(5, str, str),
        TypeError, r"a serializer name must be a non-empty string, got 5"),
    bad("strand.Serializer", "non-callable dumps and loads",
        lambda res: strand.Serializer("text", 5, 6),
        TypeError, r"the dumps of serializer 'text' must be callable, got int"),
    bad("strand.register_serializer", "5", lambda res: strand.register_serializer(5),
        TypeError, r"register_serializer needs a strand.Serializer, got 5"),
    bad("strand.get_serializer", "'bogus'", lambda res: strand.get_serializer("bogus"),
        ValueError, r"unknown serializer 'bogus'; registered: \["),
    bad("strand.get_serializer", "5", lambda res: strand.get_serializer(5),
        TypeError, r"a serializer must be a name or a strand.Serializer, got 5"),
    bad("strand.open_store", "5", lambda res: strand.open_store(5),
        TypeError, r"a task store must be a MutableMapping, a redis:// URL .* got int: 5"),
    bad("strand.open_store", "None", lambda res: strand.open_store(None),
        TypeError, r"got NoneType: None"),
    bad("strand.open_store", "':memory:'", lambda res: strand.open_store(":memory:"),
        ValueError, r"SqliteStore needs a file path \(an in-memory database"),
    bad("strand.open_store", "a directory", sqlite_store_in_a_directory,
        sqlite3.OperationalError,
        r"cannot open the task store '.*': unable to open database file"),
    bad("strand.SqliteStore", "path=5", lambda res: strand.SqliteStore(5),
        TypeError, r"SqliteStore needs a file path \(str or os.PathLike\), got int: 5"),
    bad("strand.SqliteStore", "a file in a missing directory",
        lambda res: strand.SqliteStore(res.path("missing/tasks.db")),
        sqlite3.OperationalError,
        r"cannot open the task store '.*missing/tasks.db'"),
    bad("strand.SqliteStore", "table='a b'",
        lambda res: strand.SqliteStore(res.path("t.db"), table="a b"),
        ValueError, r"table must be a plain SQL identifier, got 'a b'"),
    bad("strand.SqliteStore", "table=5", lambda res: strand.SqliteStore(res.path("t.db"), table=5),
        TypeError, r"table must be a str, got 5"),
    bad("strand.SqliteStore", "timeout='x'",
        lambda res: strand.SqliteStore(res.path("t.db"), timeout="x"),
        TypeError, r"timeout .* got 'x'"),
    bad("strand.SqliteStore", "timeout=-1",
        lambda res: strand.SqliteStore(res.path("t.db"), timeout=-1),
        ValueError, r"timeout .* got -1"),
    bad("strand.SqliteStore", "timeout=True",
        lambda res: strand.SqliteStore(res.path("t.db"), timeout=True),
        TypeError, r"timeout .* got True"),
    bad("strand.SqliteStore", "a task id that is not a str",
        store_write(Resources.sqlite_store, 5, {"status": "new"}),
        TypeError, r"task ids in a store are strings, got 5"),
    bad("strand.SqliteStore", "a record that is not a mapping",
        store_write(Resources.sqlite_store, "task", 5),
        TypeError, r"a task record must be a mapping, got int"),
    bad("strand.SqliteStore", "use after close",
        store_write(Resources.closed_sqlite_store, "task", {"status": "new"}),
        ValueError, r"SqliteStore\('.*'.*\) is closed"),
    bad("strand.MappingTaskQueue", "5", lambda res: strand.MappingTaskQueue(5),
        TypeError, r"a task store must be a MutableMapping, got int"),
    bad("strand.MappingTaskQueue.claim_task", "a closed shelf",
        lambda res: strand.MappingTaskQueue(res.closed_shelf()).claim_task("reader"),
        ValueError, r"closed shelf"),
    bad("strand.RedisStore", "neither url nor client",
        lambda res: (res.redis_url(), strand.RedisStore()),
        TypeError, r"RedisStore needs exactly one of url= or client="),
    bad("strand.RedisStore", "an http:// URL",
        lambda res: (res.redis_url(), strand.RedisStore("http://127.0.0.1")),
        ValueError, r"redis://"),
    bad("strand.RedisStore", "client=5",
        lambda res: (res.redis_url(), strand.RedisStore(client=5)),
        TypeError, r"client.* got 5"),
    bad("strand.RedisStore", "a task id that is not a str",
        store_write(Resources.redis_store, 5, {"status": "new"}),
        TypeError, r"task ids in a store are strings, got 5"),
    bad("strand.RedisStore", "a record that is not a mapping",
        store_write(Resources.redis_store, "task", 5),
        TypeError, r"a task record must be a mapping, got int"),
    bad("strand.RedisStore", "use after close", closed_redis_store, ValueError, r"is closed"),
    bad("strand.StoreTaskWriter", "a call before the store is set",
        lambda res: strand.StoreTaskWriter(add, None)(1, 2),
        ValueError, r"has no store yet: set writer.store"),
    bad("strand.StoreTaskWriter", "task_id=5",
        lambda res: strand.StoreTaskWriter(add, {})(1, 2, task_id=5),
        TypeError, r"task_id must be a non-empty str, got 5"),
    bad("strand.TaskDispatcher", "target='bogus'", lambda res: strand.TaskDispatcher("bogus"),
        ValueError, r"unknown taskrunner target 'bogus'"),
    bad("strand.TaskDispatcher", "check_complete=5",
        lambda res: strand.TaskDispatcher(check_complete=5),
        TypeError, r"check_complete must be callable, got int"),
    bad("strand.TaskDispatcher.dispatch", "args='ab'",
        lambda res: strand.TaskDispatcher().dispatch(double, args="ab"),
        TypeError, r"args must be a list or tuple of arguments, got 'ab'"),
    bad("strand.TaskDispatcher.dispatch", "kwargs=5",
        lambda res: strand.TaskDispatcher().dispatch(double, kwargs=5),
        TypeError, r"kwargs must be a dict, got 5"),
    bad("strand.TaskDispatcher.dispatch", "a non-callable",
        lambda res: strand.TaskDispatcher().dispatch(5),
        TypeError, r"the function of ThreadTaskrunner must be callable, got int"),
    bad("strand.TaskDispatcher.run", "timeout=-1", lambda res: strand.TaskDispatcher().run(-1),
        ValueError, r"timeout .* got -1"),
    bad("strand.TaskDispatcher.run", "check_complete never true",
        lambda res: strand.TaskDispatcher(check_complete=lambda *lists: False).run(0.01),
        TimeoutError, r"did not complete within 0.01 seconds"),
    bad("strand.run_process", "a non-callable", lambda res: strand.run_process(5).__enter__(),
        TypeError, r"run_process's func must be callable, got int"),
    bad("strand.run_process", "timeout='x'",
        lambda res: strand.run_process(double, timeout="x").__enter__(),
        TypeError, r"timeout .* got 'x'"),
    bad("strand.run_process", "process_already_running failing",
        lambda res: strand.run_process(double, process_already_running=lambda: 1 / 0).__enter__(),
        RuntimeError, r"process_already_running failed: ZeroDivisionError"),
    bad("strand.run_process", "is_ready never true",
        lambda res: strand.run_process(time.sleep, (30,), is_ready=lambda: False,
                                       timeout=0.05).__enter__(),
        TimeoutError, r"process sleep was not ready within 0.05 seconds"),
    bad("strand.run_process", "is_ready='soon'",
        lambda res: strand.run_process(time.sleep, (30,), is_ready="soon").__enter__(),
        TypeError, r"is_ready \(seconds or a function\) must be callable, got str"),
    bad("strand.StoreTaskWriter", "store=5", lambda res: strand.StoreTaskWriter(add, 5),
        TypeError, r"a task store must be a MutableMapping.* got int: 5"),
    bad("strand.StoreTaskWriter", "a lambda", lambda res: strand.StoreTaskWriter(lambda: 1, {}),
        ValueError, r"a lambda has no name a reader could find it by"),
    bad("strand.StoreTaskWriter", "serializer='pickle' without a secret",
        lambda res: strand.StoreTaskWriter(add, {}, serializer="pickle"),
        ValueError, r"serializer='pickle' needs secret="),
    bad("strand.StoreTaskWriter", "serializer=5",
        lambda res: strand.StoreTaskWriter(add, {}, serializer=5),
        TypeError, r"a serializer must be a name or a strand.Serializer, got 5"),
    bad("strand.StoreTaskWriter", "secret=5",
        lambda res: strand.StoreTaskWriter(add, {}, secret=5),
        TypeError, r"secret must be str or bytes, got int"),
    bad("strand.StoreTaskWriter", "a short secret",
        lambda res: strand.StoreTaskWriter(add, {}, secret="short"),
        ValueError, r"secret must be at least 16 bytes long"),
    bad("strand.StoreTaskWriter", "pickle_func='bogus'",
        lambda res: strand.StoreTaskWriter(add, {}, pickle_func="bogus"),
        ValueError, r"unknown serializer 'bogus'"),
    bad("strand.StoreTaskWriter", "get_result=5",
        lambda res: strand.StoreTaskWriter(add, {}, get_result=5),
        TypeError, r"get_result must be callable, got 5"),
    bad("strand.StoreTaskWriter", "reader_kwargs=5",
        lambda res: strand.StoreTaskWriter(add, {}, read_store={}, reader_kwargs=5),
        TypeError, r"reader_kwargs must be a dict of StoreTaskReader arguments, got 5"),
    bad("strand.StoreTaskWriter", "an argument SQLite cannot store",
        writer_call(Resources.sqlite_store, threading.Lock()),
        TypeError, r"task '\w+' cannot be stored as JSON: .*lock"),
    bad("strand.StoreTaskWriter", "an argument Redis cannot store",
        writer_call(Resources.redis_store, threading.Lock()),
        TypeError, r"cannot be stored as JSON"),
    bad("strand.StoreTaskWriter", "a closed SQLite store",
        writer_call(Resources.closed_sqlite_store, 1, 2), ValueError, r"is closed"),
    bad("strand.StoreTaskWriter", "a closed shelf",
        writer_call(Resources.closed_shelf, 1, 2), ValueError, r"closed shelf"),
    bad("strand.StoreTask.result", "timeout='x'", store_task_result("x"),
        TypeError, r"timeout .* got 'x'"),
    bad("strand.StoreTask.result", "its shelf closed", store_task_result_after_close,
        ValueError, r"closed shelf"),
    bad("strand.StoreTaskReader", "store=5", lambda res: strand.StoreTaskReader(5),
        TypeError, r"a task store must be .* got int: 5"),
    bad("strand.StoreTaskReader", "get_task_func=5", lambda res: strand.StoreTaskReader({}, 5),
        TypeError, r"get_task_func must be callable, got int"),
    bad("strand.StoreTaskReader", "lease=0", lambda res: strand.StoreTaskReader({}, lease=0),
        ValueError, r"lease must be a positive number of seconds.*got 0"),
    bad("strand.StoreTaskReader", "poll_interval=-1",
        lambda res: strand.StoreTaskReader({}, poll_interval=-1),
        ValueError, r"poll_interval must be a positive number of seconds.*got -1"),
    bad("strand.StoreTaskReader", "functions=5",
        lambda res: strand.StoreTaskReader({}, functions=5),
        TypeError, r"functions must be a mapping .* got 5"),
    bad("strand.StoreTaskReader", "require_signature without a secret",
        lambda res: strand.StoreTaskReader({}, require_signature=True),
        ValueError, r"require_signature=True needs secret="),
    bad("strand.StoreTaskReader.run_once", "a closed SQLite store",
        reader_run_once(Resources.closed_sqlite_store), ValueError, r"is closed"),
    bad("strand.StoreTaskReader.run_once", "a closed shelf",
        reader_run_once(Resources.closed_shelf), ValueError, r"closed shelf"),
    bad("strand.StoreTaskReader", "lease='x'", lambda res: strand.StoreTaskReader({}, lease="x"),
        TypeError, r"lease .* got 'x'"),
    bad("strand.StoreTaskReader", "lease=10**400",
        lambda res: strand.StoreTaskReader({}, lease=10 ** 400), ValueError, r"lease"),
    bad("strand.StoreTaskReader", "poll_interval=inf",
        lambda res: strand.StoreTaskReader({}, poll_interval=float("inf")),
        ValueError, r"poll_interval"),
    bad("strand.StoreTaskReader.stop", "timeout='x'", reader_stop("x"),
        TypeError, r"timeout .* got 'x'"),
    bad("strand.StoreTaskReader.stop", "timeout=-1", reader_stop(-1),
        ValueError, r"timeout .* got -1"),
    bad("strand.StoreTaskReader.run_pending", "limit='x'", reader_run_pending("x"),
        TypeError, r"limit .* got 'x'"),
    bad("strand.TaskRegistry", "5", lambda res: strand.TaskRegistry(5),
        TypeError, r"functions must be a mapping of names to functions.* got 5"),
    bad("strand.TaskRegistry", "a non-callable", lambda res: strand.TaskRegistry([5]),
        TypeError, r"a task function must be callable, got int"),
    bad("strand.TaskRegistry", "a name that is not a str",
        lambda res: strand.TaskRegistry({5: add}),
        TypeError, r"a task name must be a non-empty string, got 5"),
    bad("strand.registry.register", "a non-callable", lambda res: strand.registry.register(5),
        TypeError, r"a task function must be callable, got int"),
    bad("strand.registry.register", "an empty name",
        lambda res: strand.registry.register(add, name=""),
        TypeError, r"a task name must be a non-empty string, got ''"),
    bad("strand.registry.resolve", "a record that is not a mapping",
        lambda res: strand.registry.resolve(5),
        TypeError, r"resolve needs a task record \(a mapping\), got 5"),
    bad("strand.register_task", "a non-callable", lambda res: strand.register_task(5),
        TypeError, r"a task function must be callable, got int"),
    bad("strand.register_task", "name=5", lambda res: strand.register_task(name=5)(add),
        TypeError, r"a task name must be a non-empty string, got 5"),
]

BAD_INPUT = PYLATERAL_ROWS + PARALLEL_ROWS + STRAND_ROWS


def works(entry, what, call, expected):
    """One row that must simply work: ``call(res)`` returns ``expected(res)``."""
    return pytest.param(entry, call, expected, id=f"{entry}: {what}")


def dispatch_results(items, **options):
    def run(res):
        dispatched = strand.dispatch(double, items, **options)
        res.later(lambda: dispatched.wait(PATIENCE))
        return dispatched.result(60)
    return run


def async_map_results(items):
    def run(res):
        with parallel.async_map(double, items) as execution:
            return execution.results()
    return run


def local_function_on_processes(res):
    def triple(x):
        return 3 * x

    return parallel.process.map(triple, [1, 2])


def pool_with_endless_timeout(res):
    @pylateral.task(has_return_value=True)
    def doubled(x):
        return 2 * x

    with pylateral.task_pool(max_workers=1, timeout=10 ** 400) as pool:
        doubled(1)
    return pool.return_values()


def runner_lambda(method):
    def run(res):
        runner = strand.MultiprocessTaskrunner(lambda x: x + 1, mp_context=method)
        return runner(1).result(PATIENCE)
    return run


def spawn_local_function(res):
    def triple(x):
        return 3 * x

    return strand.MultiprocessTaskrunner(triple, mp_context="spawn")(1).result(PATIENCE)


#: strand.dispatch makes a handle and a core batch per call (its design): on
#: threads ~10 us and ~900 bytes each, so 10**6 items take ~13 s and ~840 MB
#: here.  A tenth of HUGE keeps the row near a second and under the bound.
STRAND_HUGE = HUGE // 10

ACCEPTED_INPUT = [
    works("parallel.map", "[]", lambda res: parallel.map(double, []), lambda: []),
    works("parallel.map", "{}", lambda res: parallel.map(double, {}), lambda: {}),
    works("parallel.par", "[]", lambda res: parallel.par([]), lambda: []),
    works("parallel.process.map", "[]", lambda res: parallel.process.map(double, []), lambda: []),
    works("parallel.async_map", "[]", async_map_results([]), lambda: []),
    works("strand.dispatch", "[]", dispatch_results([]), lambda: []),
    works("parallel.map", "range(10**6)", lambda res: parallel.map(double, range(HUGE)),
          lambda: [2 * i for i in range(HUGE)]),
    works("parallel.map", "a generator of 10**6",
          lambda res: parallel.map(double, (i for i in range(HUGE))),
          lambda: [2 * i for i in range(HUGE)]),
    works("parallel.process.map", "range(10**6)",
          lambda res: parallel.process.map(double, range(HUGE)),
          lambda: [2 * i for i in range(HUGE)]),
    works("parallel.par", "10**6 calls", lambda res: parallel.par([int] * HUGE),
          lambda: [0] * HUGE),
    works("parallel.async_map", "range(10**6)", async_map_results(range(HUGE)),
          lambda: [2 * i for i in range(HUGE)]),
    works("strand.dispatch", "range(10**5) on threads", dispatch_results(range(STRAND_HUGE)),
          lambda: [2 * i for i in range(STRAND_HUGE)]),
    works("strand.dispatch", "range(10**5), sync",
          dispatch_results(range(STRAND_HUGE), target="sync"),
          lambda: [2 * i for i in range(STRAND_HUGE)]),
    works("parallel.process.map", "a lambda",
          lambda res: parallel.process.map(lambda x: x + 1, [1, 2]), lambda: [2, 3]),
    works("parallel.process.map", "a local function", local_function_on_processes,
          lambda: [3, 6]),
    works("strand.MultiprocessTaskrunner", "a lambda, fork", runner_lambda("fork"), lambda: 2),
    # Sent with cloudpickle, as parallel sends them (3.14's default is forkserver).
    works("strand.MultiprocessTaskrunner", "a lambda, spawn", runner_lambda("spawn"), lambda: 2),
    works("strand.MultiprocessTaskrunner", "a local function, spawn", spawn_local_function,
          lambda: 3),
    # An int timeout beyond a float's range means forever (docs/core.md).
    works("pylateral.task_pool", "timeout=10**400", pool_with_endless_timeout, lambda: [2]),
    works("pylateral.checkpoint", "outside any pool", lambda res: pylateral.checkpoint(),
          lambda: None),
    works("pylateral.checkpoint", "in the thread that opened a pool",
          in_pool(lambda pool: pylateral.checkpoint()), lambda: None),
    works("parallel.map", "timeout=10**400",
          lambda res: parallel.map(double, [1], timeout=10 ** 400), lambda: [2]),
    works("strand.TaskHandle.result", "timeout=10**400",
          lambda res: strand.ThreadTaskrunner(double)(1).result(10 ** 400), lambda: 2),
    works("pylateral.task_pool", "PYLATERAL_WORKERS=' 3 '",
          lambda res: (res.setenv("PYLATERAL_WORKERS", " 3 "),
                       pylateral.task_pool().max_workers)[1], lambda: 3),
]


# --- what must not be left behind -------------------------------------------------

def child_pids():
    """Children of this process, zombies included, whoever started them."""
    pids = set()
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as children:
                pids.update(int(pid) for pid in children.read().split())
        except OSError:
            continue
    return pids


def snapshot():
    return {
        "threads": set(threading.enumerate()),
        "multiprocessing children": {p.pid for p in multiprocessing.active_children()},
        "child processes": child_pids(),
    }


def unfinished_work():
    """Tasks still queued or running where the rows could have left one
    (strand's pool has its own check: :func:`strand_pool_idle`)."""
    problems = []
    if _lateral.get_current_pool() is not None:
        problems.append("a pylateral task pool is still open")
    pool = strand.thread_pool()
    if pool.pending or pool.queued:
        problems.append(f"strand's pool has {pool.pending} tasks pending, {pool.queued} queued")
    if abandoned_parallel_calls():
        problems.append("parallel has abandoned calls still running")
    return problems


def abandoned_parallel_calls():
    """How many thread-executor pools a call or an abandoned batch still
    keeps busy (docs/parallel.md, "Threads"; parallel's private
    ``_threads.busy_pools()``)."""
    return parallel._threads.busy_pools()


def strand_pool_idle(grace=GRACE):
    """True when every thread of strand's pool is free within ``grace``
    seconds: as many calls as it has threads all meet at a barrier (a busy
    thread would keep one out)."""
    pool = strand.thread_pool()
    barrier = threading.Barrier(pool.max_workers, timeout=grace)
    batches = [pool.call(barrier.wait) for _ in range(pool.max_workers)]
    return all(batch.wait(grace) for batch in batches) and not any(
        batch.errors for batch in batches)


def leftovers(baseline):
    """What exists now and did not at the baseline (empty when clean)."""
    now = snapshot()
    return {what: sorted(map(str, now[what] - baseline[what]))
            for what in now if now[what] - baseline[what]}


def assert_nothing_left(baseline):
    """No thread, child process or task beyond the baseline, allowing GRACE
    seconds for what ends asynchronously by design (a thread exiting, the
    last call of a cancelled batch)."""
    def clean():
        return not leftovers(baseline) and not unfinished_work()

    if not clean():
        gc.collect()  # an object the row dropped may hold what it would release
        wait_until(clean, timeout=GRACE)
    assert leftovers(baseline) == {}
    assert unfinished_work() == []
    assert strand_pool_idle(), "a call is still running on strand's pool"


def warm_strand_pool():
    """Start every thread of strand's shared pool."""
    assert strand_pool_idle(PATIENCE)


def warm_parallel_pools():
    """Start every thread of the 4 idle thread pools parallel keeps, and its
    default-sized process pool: four concurrent calls never share a pool,
    and their calls all wait for each other."""
    workers = parallel._params.default_thread_workers()
    barrier = threading.Barrier(4 * workers, timeout=PATIENCE)
    executions = [parallel.async_map(lambda _: barrier.wait(), range(workers))
                  for _ in range(4)]
    for execution in executions:
        with execution:
            execution.results(PATIENCE)
    assert parallel.process.map(double, [1, 2]) == [2, 4]


@pytest.fixture(scope="module")
def redis_url():
    """The URL of a throw-away redis-server, or None without one."""
    if shutil.which("redis-server") is None or importlib.util.find_spec("redis") is None:
        yield None
        return
    with redis_server() as url:
        yield url


@pytest.fixture(scope="module")
def baseline(redis_url):
    warm_strand_pool()
    warm_parallel_pools()
    resource_tracker.ensure_running()
    gc.collect()
    return snapshot()


@pytest.fixture
def res(tmp_path, monkeypatch, redis_url, baseline):
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    resources = Resources(tmp_path, monkeypatch, redis_url)
    yield resources
    resources.cleanup()
    # A failed row must not blame the next one for what it left.
    wait_until(lambda: not leftovers(baseline) and strand_pool_idle(), timeout=PATIENCE)


def peak_memory_reset():
    """Reset the peak resident size (VmHWM); False where that is impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def peak_memory_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/self/status")


# --- the tests ----------------------------------------------------------------------

@pytest.mark.parametrize("entry, call, raises, match", BAD_INPUT)
def test_bad_input_gets_a_clear_exception_and_leaves_nothing_behind(
        entry, call, raises, match, res, baseline):
    with pytest.raises(raises) as caught:
        call(res)
    res.cleanup()
    message = str(caught.value)
    assert re.search(match, message), f"{type(caught.value).__name__}: {message}"
    assert_nothing_left(baseline)


@pytest.mark.parametrize("entry, call, expected", ACCEPTED_INPUT)
def test_empty_and_huge_collections_and_lambdas_just_work(entry, call, expected, res, baseline):
    measured = peak_memory_reset()
    start = peak_memory_mb()
    result = call(res)
    grown = peak_memory_mb() - start
    res.cleanup()
    assert result == expected()
    if measured and not SANITIZED:  # ASan and valgrind quarantine freed memory
        assert grown < HUGE_MEMORY_MB, f"{entry} peaked {grown:.0f} MB above its start"
    assert_nothing_left(baseline)


#: Public callables that take no input at all, or accept any input.
NO_BAD_INPUT = {
    "pylateral.get_current_task_pool": "takes no argument",
    "pylateral.get_current_task_group": "takes no argument",
    "parallel.shutdown": "takes no argument",
    "parallel.BaseResult": "abstract base of the results; takes no argument",
    "strand.Handle": "abstract base of the handles; takes no argument",
    "parallel.arg": "any arguments are a valid call",
    "parallel.ParallelArg": "parallel.arg's other name: any arguments are a valid call",
    "parallel.NOT_STARTED": "a constant",
    "parallel.STARTED": "a constant",
    "parallel.DONE": "a constant",
    "parallel.FAILED": "a constant",
    "strand.Args": "any arguments are a valid call",
}


def documented_names():
    """``package.name`` for every public name: each package's ``__all__`` and
    every ``package.name`` the docs mention (submodules aside)."""
    names = {f"{package}.{name}" for package, module in PACKAGES.items()
             for name in module.__all__}
    pattern = re.compile(r"\b(%s)\.([A-Za-z_]\w*)" % "|".join(PACKAGES))
    for page in DOCS.glob("*.md"):
        for package, name in pattern.findall(page.read_text()):
            if name == "md" or (not hasattr(PACKAGES[package], name) and
                                importlib.util.find_spec(f"{package}.{name}") is not None):
                continue  # a page's file name, or a submodule such as pylateral.demo
            names.add(f"{package}.{name}")
    return names


def needs_rows(qualified):
    """Everything but constants, modules and exception classes (which a
    caller raises or catches, never calls with input)."""
    package, name = qualified.split(".")
    value = getattr(PACKAGES[package], name)
    if isinstance(value, (str, tuple, dict, type(sys))):
        return False
    return not (isinstance(value, type) and issubclass(value, BaseException))


def test_every_public_entry_point_has_a_row():
    names = documented_names()
    missing_from_package = sorted(name for name in names
                                  if not hasattr(PACKAGES[name.split(".")[0]],
                                                 name.split(".")[1]))
    assert missing_from_package == [], "documented but not exported"
    rows = {".".join(param.values[0].split(".")[:2]) for param in BAD_INPUT + ACCEPTED_INPUT}
    uncovered = sorted(name for name in names
                       if needs_rows(name) and name not in rows and name not in NO_BAD_INPUT)
    assert uncovered == []
    stale = sorted(name for name in NO_BAD_INPUT if name not in names or name in rows)
    assert stale == [], "allow-listed names that are gone or have rows now"
