"""Contention: 64 threads lined up to run at the same moment, all on one pylateral
pool (tasks, nested tasks, task groups, ``cache_result``, ``return_values()``
and ``join()``), or all calling ``parallel.map`` / ``par`` together.  Every
count and value is checked exactly; a deadlock fails the test (thread joins
with deadlines, pytest-timeout behind them) and no thread may be left over.
"""
import collections
import os
import sys
import threading
import time

import pytest

import parallel
import pylateral
from common_support import PATIENCE, scaled, wait_until
from parallel_support import CustomError, parallel_threads
from pylateral_support import isolated_pylateral, pylateral_threads  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(240)

THREADS = 64
KEYS = 8


@pytest.fixture(autouse=True)
def frequent_thread_switches():
    """Switch threads every 10 us instead of 5 ms, so that the contenders'
    calls interleave finely instead of running one GIL slice each."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(previous)


class StartLine:
    """Lines the contenders up before each round.  A barrier alone wakes its
    threads one by one, each finishing its short round before the next is
    scheduled; so after the barrier every thread also spins (yielding the
    GIL) until all of them are awake, and the round's calls overlap."""

    def __init__(self, count):
        self._count = count
        self._barrier = threading.Barrier(count)
        self._lock = threading.Lock()
        self._awake = collections.defaultdict(list)

    def wait(self, round_):
        """Return when all ``count`` threads are running round ``round_``."""
        self._barrier.wait(PATIENCE)
        with self._lock:
            awake = self._awake[round_]
            awake.append(threading.get_ident())
        deadline = time.monotonic() + PATIENCE
        while len(awake) < self._count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(awake)} of {self._count} threads reached "
                                   f"round {round_}")
            time.sleep(0)

    def abort(self):
        """Release the waiting threads (with BrokenBarrierError)."""
        self._barrier.abort()


def let_others_run():
    """Yield the GIL, so that the contenders' calls interleave finely."""
    time.sleep(0)


def run_at_once(target, count=THREADS):
    """Run ``target(index, line)`` in ``count`` threads; ``line`` is their
    StartLine.  Returns the ``(index, exception)`` of the threads that raised."""
    line = StartLine(count)
    failures = []

    def body(index):
        try:
            target(index, line)
        except BaseException as exc:  # reported by the test, with its thread
            failures.append((index, exc))
            line.abort()  # nobody waits for a thread that gave up

    threads = [threading.Thread(target=body, args=(i,), name=f"contender-{i}")
               for i in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 6 * PATIENCE
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"deadlock: {len(stuck)} threads never finished: {stuck[:5]}"
    return failures


# ======================================================================
# pylateral: one pool, 64 submitting threads
# ======================================================================

class Resource:
    """What the cached factories build: remembers its key and its builder."""

    def __init__(self, key):
        self.key = key
        self.builder = threading.current_thread().name


#: (scope, thread name, key) of every call of a cached factory's body.
BUILDS = []


@pylateral.cache_result(scope=pylateral.CacheScopes.PROCESS)
def shared_resource(key):
    """One Resource per key for the whole process."""
    BUILDS.append(("process", threading.current_thread().name, key))
    time.sleep(0.002)  # a slow factory: other threads ask for the key meanwhile
    return Resource(key)


@pylateral.cache_result(scope=pylateral.CacheScopes.THREAD)
def thread_resource(key):
    """One Resource per key and thread."""
    BUILDS.append(("thread", threading.current_thread().name, key))
    return Resource(key)


@pylateral.task(has_return_value=True)
def leaf(owner, call):
    """A nested task: its value belongs to its caller's group, if any."""
    return ("leaf", owner, call)


@pylateral.task(has_return_value=True)
def branch(owner, call):
    """Starts a leaf, then reports the resources this thread got for its key."""
    leaf(owner, call)
    key = call % KEYS
    return ("branch", owner, call, shared_resource(key), thread_resource(key),
            threading.current_thread().name)


def expected_values(owner, calls):
    """(kind, owner, call) of everything ``calls`` branches of ``owner`` return."""
    return collections.Counter([(kind, owner, call) for call in range(calls)
                                for kind in ("leaf", "branch")])


def summary(values):
    """Counter of the (kind, owner, call) heads of collected values."""
    return collections.Counter(value[:3] for value in values)


@pytest.fixture
def fresh_caches():
    """Empty caches and build log before and after the test."""
    shared_resource.clear_cache()
    thread_resource.clear_cache()
    del BUILDS[:]
    yield
    shared_resource.clear_cache()
    thread_resource.clear_cache()


def check_cached_resources(values, seen_by_contenders):
    """PROCESS scope: built once per key, the same object for every caller.
    THREAD scope: built once per (thread, key), by that thread, and never
    handed to another thread."""
    process_builds = collections.Counter(key for scope, _, key in BUILDS if scope == "process")
    assert process_builds == collections.Counter(range(KEYS)), process_builds
    canonical = [shared_resource(key) for key in range(KEYS)]
    thread_builds = collections.Counter((name, key) for scope, name, key in BUILDS
                                        if scope == "thread")
    assert max(thread_builds.values()) == 1, "a thread built the same key twice"
    per_thread = {}
    branches = [value for value in values if value[0] == "branch"]
    for _, _, call, shared, local, runner in branches:
        assert shared is canonical[call % KEYS]
        assert local.key == call % KEYS and local.builder == runner
        assert per_thread.setdefault((runner, local.key), local) is local
    for index, (shared, local) in seen_by_contenders.items():
        assert all(mine is canonical[key] for key, mine in enumerate(shared))
        assert [r.builder for r in local] == [f"contender-{index}"] * KEYS
    assert len({id(r) for r in per_thread.values()}) == len(per_thread)


CHUNK = 10  # task calls per thread and round


def submit_rounds(index, rounds, line):
    """``rounds`` rounds of CHUNK branch calls, every round started together."""
    for round_ in range(rounds):
        line.wait(round_ + 1)
        for offset in range(CHUNK):
            branch(index, round_ * CHUNK + offset)
            if offset % 3 == 2:
                let_others_run()


def test_64_threads_share_one_pool_its_groups_and_its_caches(fresh_caches):
    rounds = scaled(10)
    calls = rounds * CHUNK
    grouped, after_join, seen = {}, {}, {}

    def contender(index, line):
        # Every contender asks for every key at the same moment first.
        line.wait(0)
        shared = [shared_resource(key) for key in range(KEYS)]
        local = [thread_resource(key) for key in range(KEYS)]
        assert all(thread_resource(k) is r for k, r in enumerate(local))
        seen[index] = (shared, local)
        if index % 2:  # values go to this thread's own group
            with pylateral.task_group() as group:
                submit_rounds(index, rounds, line)
            grouped[index] = list(group.results)
        else:          # values go to the pool; join() waits for them
            submit_rounds(index, rounds, line)
            pylateral.join()
            after_join[index] = [v for v in pool.return_values() if v[1] == index]

    with pylateral.task_pool(max_workers=8) as pool:
        failures = run_at_once(contender)
    assert failures == []
    assert pool.errors == []
    assert pylateral_threads() == []

    for index, values in grouped.items():
        assert summary(values) == expected_values(index, calls), f"group of thread {index}"
    for index, values in after_join.items():
        assert summary(values) == expected_values(index, calls), f"after join in thread {index}"
    assert sorted(grouped) == list(range(1, THREADS, 2))
    assert sorted(after_join) == list(range(0, THREADS, 2))
    expected_pool = sum((expected_values(i, calls) for i in range(0, THREADS, 2)),
                        collections.Counter())
    assert summary(pool.return_values()) == expected_pool, "group values leaked into the pool"

    everything = pool.return_values() + [v for values in grouped.values() for v in values]
    check_cached_resources(everything, seen)


# ======================================================================
# parallel: 64 threads calling map / par at once
# ======================================================================

#: (owner, round, item) of every call that ran; list.append is atomic.
RECORD = []


def record_square(owner, round_, item):
    """Records the call; returns (owner, item squared)."""
    RECORD.append((owner, round_, item))
    return owner, item * item


def record_or_fail(owner, round_, item, bad=()):
    """record_square, except that an item in ``bad`` raises CustomError."""
    RECORD.append((owner, round_, item))
    if item in bad:
        raise CustomError(f"item {item} of {owner}", code=item)
    return owner, item * item


def default_thread_workers():
    """docs/parallel.md: the default is min(32, CPUs + 4) threads."""
    return min(32, (os.cpu_count() or 1) + 4)


@pytest.fixture
def clean_parallel():
    """Start without cached pools; close every pool at the end and check
    that no thread of any kind outlived the test."""
    parallel.shutdown()
    del RECORD[:]
    before = set(threading.enumerate())
    yield
    parallel.shutdown()
    assert parallel_threads() == []
    assert wait_until(lambda: set(threading.enumerate()) <= before, timeout=PATIENCE), \
        [t.name for t in set(threading.enumerate()) - before]


def one_round(index, round_, items):
    """One call of ``index``'s round ``round_`` (map, par or silent map, in
    turn), checked against the loop that computes the same calls."""
    kind = (index + round_) % 3
    workers = 1 + index % 4
    if kind == 0:
        result = parallel.map(record_square, [(index, round_, i) for i in range(items)],
                              max_workers=workers)
        assert result == [(index, i * i) for i in range(items)]
    elif kind == 1:
        result = parallel.par({f"k{i}": parallel.future(record_square, index, round_, i)
                               for i in range(items)}, max_workers=workers)
        assert list(result.items()) == [(f"k{i}", (index, i * i)) for i in range(items)]
    else:
        bad = frozenset(i for i in range(items) if i % 5 == index % 5)
        result = parallel.map(record_or_fail, [(index, round_, i) for i in range(items)],
                              extras={"bad": bad}, max_workers=workers, silent=True)
        for i, slot in enumerate(result):
            if i in bad:
                assert slot == parallel.FailedTask(
                    params=(index, round_, i), kwargs={"bad": bad},
                    ex=CustomError(f"item {i} of {index}", i)), slot
            else:
                assert slot == (index, i * i)


def test_64_threads_call_parallel_map_and_par_at_once(clean_parallel):
    rounds, items = scaled(12), scaled(100)

    def contender(index, line):
        for round_ in range(rounds):
            line.wait(round_)
            one_round(index, round_, items)

    assert run_at_once(contender) == []
    expected = collections.Counter((owner, round_, item) for owner in range(THREADS)
                                   for round_ in range(rounds) for item in range(items))
    assert collections.Counter(RECORD) == expected, "every call ran exactly once"
    # 64 concurrent calls each took a pool; once they are done at most 4 idle
    # pools are kept, each with no more threads than its size.
    bound = 4 * max(4, default_thread_workers())
    assert wait_until(lambda: len(parallel_threads()) <= bound), len(parallel_threads())


def test_64_threads_with_failing_maps_each_get_their_own_first_error(clean_parallel):
    rounds, items = scaled(8), scaled(40, minimum=10)

    def contender(index, line):
        for round_ in range(rounds):
            line.wait(round_)
            bad = frozenset({index % items, (index * 7 + round_) % items, items - 1})
            with pytest.raises(CustomError) as caught:
                parallel.map(record_or_fail, [(index, round_, i) for i in range(items)],
                             extras={"bad": bad}, max_workers=1 + index % 4)
            first = min(bad)
            assert caught.value.args == (f"item {first} of {index}", first)

    assert run_at_once(contender) == []
    ran = collections.Counter(RECORD)
    assert max(ran.values()) == 1, "a call ran twice"
    for owner in range(THREADS):
        for round_ in range(rounds):
            first = min({owner % items, (owner * 7 + round_) % items, items - 1})
            assert all((owner, round_, i) in ran for i in range(first + 1)), \
                "an item before the first failure did not run"
