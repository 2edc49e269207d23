"""parallel on the thread executor: parameters, results, errors, silent mode,
timeouts, the async API, executors and decorators."""
import collections
import concurrent.futures
import os
import subprocess
import sys
import textwrap
import threading
import time
import traceback

import pytest

import parallel
from parallel_support import PATIENCE, Counter, describe, parallel_threads, wait_until

pytestmark = [pytest.mark.timeout(60)]


@pytest.fixture(autouse=True)
def no_thread_leak():
    """Each test ends with parallel.shutdown() leaving no parallel thread."""
    yield
    parallel.shutdown()
    assert wait_until(lambda: not parallel_threads(), 5), parallel_threads()


def add(x, y):
    return x + y


def call_of(fn, args, kwargs):
    return fn(*args, **kwargs)


# -- parameters ---------------------------------------------------------------

def test_sequence_gives_list_in_input_order():
    items = list(range(500))
    # Later items finish first: order must come from the input, not completion.
    results = parallel.map(lambda i: (time.sleep(0.001 * (i % 5 == 0)), i * 2)[1], items)
    assert results == [i * 2 for i in items]
    assert isinstance(results, list) and isinstance(results, parallel.BaseResult)


def test_dict_gives_dict_by_name():
    results = parallel.map(str.upper, {"a": "x", "b": "y", "c": "z"})
    assert results == {"a": "X", "b": "Y", "c": "Z"}
    assert list(results) == ["a", "b", "c"]
    assert isinstance(results, dict) and isinstance(results, parallel.BaseResult)


def test_every_parameter_form():
    results = parallel.map(describe, [
        "single",                         # one argument
        ("a", "b"),                       # positional arguments
        ("a", {"k": 1}),                  # trailing dict: keyword arguments
        {"k": 2, "m": 3},                 # keyword arguments only
        parallel.arg({"d": 1}, k=4),      # a dict as a plain positional argument
        (),                               # no argument at all
        ["a", "list", {"k": 5}],          # a list is unpacked like a tuple
        parallel.arg(["one", "list"]),    # a list as a plain positional argument
    ])
    assert results == [
        (("single",), []),
        (("a", "b"), []),
        (("a",), [("k", 1)]),
        ((), [("k", 2), ("m", 3)]),
        (({"d": 1},), [("k", 4)]),
        ((), []),
        (("a", "list"), [("k", 5)]),
        ((["one", "list"],), []),
    ]


def test_items_of_a_type_seen_before_still_follow_their_own_rule():
    # The core remembers the last type whose items were single arguments;
    # items of other types in between keep their own unpacking.
    point = collections.namedtuple("point", "x y")

    class Keywords(dict):
        pass

    params = ["a", ("b", "c"), "d", point(1, 2), {"k": 1}, Keywords(k=2), "e",
              ["f", "g"], point(3, 4), parallel.arg("h", k=3), 5]
    assert parallel.map(describe, params) == [
        (("a",), []), (("b", "c"), []), (("d",), []), ((point(1, 2),), []),
        ((), [("k", 1)]), ((), [("k", 2)]), (("e",), []), (("f", "g"), []),
        ((point(3, 4),), []), (("h",), [("k", 3)]), ((5,), [])]


def test_unpack_arguments_false_passes_each_parameter_as_is():
    params = [("a", 1), {"k": 1}, "s"]
    assert parallel.map(describe, params, unpack_arguments=False) == [
        ((("a", 1),), []), (({"k": 1},), []), (("s",), [])]


def test_extras_are_added_to_every_call_and_item_keywords_win():
    results = parallel.map(describe, [1, (2, {"k": "own"}), {"j": 3}], extras={"k": "extra"})
    assert results == [
        ((1,), [("k", "extra")]),
        ((2,), [("k", "own")]),
        ((), [("j", 3), ("k", "extra")]),
    ]


def test_dict_params_accept_every_form_too():
    results = parallel.map(describe, {"one": 1, "two": (1, 2), "kw": {"k": 1}})
    assert results == {"one": ((1,), []), "two": ((1, 2), []), "kw": ((), [("k", 1)])}


def test_any_iterable_of_parameters_and_empty_inputs():
    assert parallel.map(lambda x: -x, (i for i in range(4))) == [0, -1, -2, -3]
    assert parallel.map(lambda x: -x, range(3)) == [0, -1, -2]
    assert parallel.map(lambda x: x, []) == []
    assert parallel.map(lambda x: x, {}) == {}
    assert parallel.par([]) == []


@pytest.mark.parametrize("params", ["abc", b"abc", 42, None])
def test_params_that_are_not_a_collection_are_refused(params):
    with pytest.raises(TypeError, match="sequence or a dict"):
        parallel.map(describe, params)


def test_fn_must_be_callable():
    with pytest.raises(TypeError, match="callable"):
        parallel.map("not callable", [1])


# -- par -----------------------------------------------------------------------

def test_par_takes_every_call_form():
    @parallel.decorate
    def shout(word, suffix="!"):
        return word.upper() + suffix

    results = parallel.par({
        "future": parallel.future(describe, 1, k=2),
        "decorated": shout.future("hi", suffix="?"),
        "tuple": (describe, "a", "b", {"k": 3}),
        "tuple_no_kwargs": (describe, "a"),
        "bare": lambda: "bare",
    })
    assert results == {
        "future": ((1,), [("k", 2)]),
        "decorated": "HI?",
        "tuple": (("a", "b"), [("k", 3)]),
        "tuple_no_kwargs": (("a",), []),
        "bare": "bare",
    }
    assert parallel.par([(add, 1, 2), parallel.future(add, "a", "b")]) == [3, "ab"]


def test_par_extras_reach_every_call():
    results = parallel.par([(describe, 1), parallel.future(describe, k="own")],
                           extras={"k": "extra"})
    assert results == [((1,), [("k", "extra")]), ((), [("k", "own")])]


def test_par_entry_of_wrong_kind_names_the_entry():
    with pytest.raises(TypeError, match="'eth'"):
        parallel.par({"btc": (add, 1, 2), "eth": 42})
    with pytest.raises(TypeError, match="entry 1"):
        parallel.par([(add, 1, 2), ("not callable", 1)])
    with pytest.raises(TypeError, match="callable"):
        parallel.future("nope")


# -- options -------------------------------------------------------------------

@pytest.mark.parametrize("executor", [parallel.THREAD_EXECUTOR, "thread", None])
def test_thread_executor_spellings(executor):
    names = parallel.map(lambda _: threading.current_thread().name, range(3),
                         executor=executor)
    assert all(name.startswith("parallel-") for name in names)


def test_bad_options_are_refused_with_their_name():
    with pytest.raises(ValueError, match="executor"):
        parallel.map(add, [(1, 2)], executor="gpu")
    with pytest.raises(TypeError, match="executor"):
        parallel.map(add, [(1, 2)], executor=42)
    with pytest.raises(ValueError, match="max_workers"):
        parallel.map(add, [(1, 2)], max_workers=0)
    with pytest.raises(TypeError, match="max_workers"):
        parallel.map(add, [(1, 2)], max_workers=2.5)
    with pytest.raises(ValueError, match="timeout"):
        parallel.map(add, [(1, 2)], timeout=-1)
    with pytest.raises(TypeError, match="timeout"):
        parallel.map(add, [(1, 2)], timeout="10")
    with pytest.raises(TypeError, match="extras"):
        parallel.map(add, [(1, 2)], extras=[("y", 1)])


def test_calls_run_in_parallel_up_to_max_workers():
    barrier = threading.Barrier(4, timeout=PATIENCE)
    # Four calls can only all pass the barrier if they run at the same time.
    assert parallel.map(lambda i: barrier.wait() is not None and i, range(4),
                        max_workers=4) == [0, 1, 2, 3]


def test_max_workers_bounds_concurrency():
    running = Counter()

    def work(_):
        running.add(1)
        time.sleep(0.01)
        running.add(-1)

    parallel.map(work, range(30), max_workers=2)
    assert running.total == 30
    assert running.peak <= 2


def test_default_workers_match_thread_pool_executor():
    expected = min(32, (os.cpu_count() or 1) + 4)
    barrier = threading.Barrier(expected, timeout=PATIENCE)
    parallel.map(lambda _: barrier.wait(), range(expected))
    running = Counter()

    def work(_):
        running.add(1)
        time.sleep(0.01)
        running.add(-1)

    parallel.map(work, range(3 * expected))
    assert running.peak <= expected


def test_map_of_many_items_creates_no_future_per_item(monkeypatch):
    created = Counter()
    original = concurrent.futures.Future.__init__

    def counting_init(self, *args, **kwargs):
        created.add(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(concurrent.futures.Future, "__init__", counting_init)
    assert parallel.map(abs, range(-5000, 0)) == list(range(5000, 0, -1))
    assert created.total == 0


def test_a_list_of_items_changed_by_the_calls_is_read_safely():
    """The thread executor reads the caller's list as the calls run (no
    copy of millions of items): a call that shrinks it leaves the later
    items with a clear error, one that grows it adds no call."""
    items = list(range(100))

    def shrink(x):
        if x == 0:
            del items[10:]
        return x

    with pytest.raises(RuntimeError, match="shrank during the map: item 10 is gone"):
        parallel.map(shrink, items, max_workers=1)

    items = list(range(100))
    results = parallel.map(shrink, items, max_workers=1, silent=True)
    assert results[:10] == list(range(10)) and len(results) == 100
    assert all(isinstance(result, parallel.FailedTask) for result in results[10:])

    grown = [1, 2, 3]
    assert parallel.map(lambda x: grown.append(x) or x, grown, max_workers=1) == [1, 2, 3]


def test_repeated_calls_reuse_the_pool_threads():
    marks = threading.local()

    def mark(_):
        seen = getattr(marks, "seen", False)
        marks.seen = True
        return seen

    parallel.map(mark, range(50), max_workers=2)
    # A thread-local mark dies with its thread: seeing it again proves that
    # the second call ran on the first call's threads.
    assert any(parallel.map(mark, range(50), max_workers=2))


def test_concurrent_calls_from_two_threads_do_not_wait_for_each_other():
    release = threading.Event()
    started = threading.Event()

    def slow(_):
        started.set()
        return release.wait(PATIENCE)

    caller = threading.Thread(target=parallel.map, args=(slow, range(8)))
    caller.start()
    try:
        assert started.wait(PATIENCE)
        # The other call's pool is busy with blocked items: this one must
        # still run at once.
        assert parallel.map(lambda x: x + 1, range(8), timeout=PATIENCE) == list(range(1, 9))
    finally:
        release.set()
        caller.join(PATIENCE)


def test_nested_map_inside_a_task_does_not_deadlock():
    def outer(i):
        return sum(parallel.map(lambda j: i * j, range(5), max_workers=2))

    assert parallel.map(outer, range(6), max_workers=2, timeout=PATIENCE) == [
        sum(i * j for j in range(5)) for i in range(6)]


# -- errors --------------------------------------------------------------------

def test_first_exception_in_input_order_propagates_with_traceback():
    late_failure_done = threading.Event()

    def work(i):
        if i == 1:
            # Fails after item 3 has already failed: it is still the one raised.
            late_failure_done.wait(PATIENCE)
            raise KeyError("first in input order")
        if i == 3:
            late_failure_done.set()
            raise ValueError("first in time")
        return i

    with pytest.raises(KeyError, match="first in input order") as info:
        parallel.map(work, range(5), max_workers=5)
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "work" in frames


def test_error_cancels_the_calls_not_started():
    calls = Counter()

    def work(i):
        calls.add(1)
        if i == 0:
            raise RuntimeError("stop")
        return i

    with pytest.raises(RuntimeError):
        parallel.map(work, range(1000), max_workers=1)
    assert calls.total == 1


def test_dict_error_propagates_too():
    with pytest.raises(ZeroDivisionError):
        parallel.map(lambda x: 1 / x, {"a": 1, "b": 0})


# -- silent mode ---------------------------------------------------------------

def test_silent_list_results():
    results = parallel.map(add, [(2, 3), ("a", 5), ("hello ", "world"), (1, None)],
                           silent=True)
    assert results.failures is True
    r1, r2, r3, r4 = results
    assert (r1, r3) == (5, "hello world")
    assert isinstance(r2, parallel.FailedTask) and isinstance(r4, parallel.FailedTask)
    assert r2.params == ("a", 5) and r2.kwargs == {} and isinstance(r2.ex, TypeError)
    assert results.failed == [r2, r4]
    assert results.succeeded == [5, "hello world"]
    assert results.replace_failed(None) == [5, None, "hello world", None]
    assert results.replace_failed(0).failures is False


def test_silent_dict_results_and_extras_in_failed_kwargs():
    def price(crypto, exchange, period="5m"):
        if exchange == "down":
            raise ConnectionError(exchange)
        return f"{crypto}@{exchange}/{period}"

    results = parallel.map(price, {
        "stamp": ("BTC", "bitstamp"),
        "finex": ("BTC", "down", {"period": "10m"}),
    }, extras={"period": "1m"}, silent=True)
    assert results.failures is True
    assert results.succeeded == {"stamp": "BTC@bitstamp/1m"}
    assert results.failed == {"finex": parallel.FailedTask(
        params=("BTC", "down"), kwargs={"period": "10m"}, ex=ConnectionError("down"))}
    assert results.replace_failed("n/a") == {"stamp": "BTC@bitstamp/1m", "finex": "n/a"}


def test_results_without_failures():
    results = parallel.map(abs, [-1, -2])
    assert results.failures is False
    assert results.failed == [] and results.succeeded == [1, 2]
    assert parallel.map(abs, {"a": -1}).failed == {}


def test_silent_runs_every_call_despite_errors():
    calls = Counter()

    def work(i):
        calls.add(1)
        if i % 2:
            raise ValueError(i)
        return i

    results = parallel.map(work, range(100), silent=True, max_workers=3)
    assert calls.total == 100
    assert [f.params for f in results.failed] == [(i,) for i in range(1, 100, 2)]
    assert results.succeeded == list(range(0, 100, 2))


def test_failed_task_equality():
    task = parallel.FailedTask(params=("a", 5), ex=TypeError("boom"))
    assert task == parallel.FailedTask(params=("a", 5), kwargs={}, ex=TypeError("boom"))
    assert task != parallel.FailedTask(params=("a", 5), ex=ValueError("boom"))
    assert task != parallel.FailedTask(params=("a", 5), ex=TypeError("other"))
    assert task != parallel.FailedTask(params=("a", 6), ex=TypeError("boom"))
    assert task != parallel.FailedTask(params=("a", 5), kwargs={"k": 1}, ex=TypeError("boom"))
    assert "params=('a', 5)" in repr(task)


def test_silent_par():
    def fails():
        raise LookupError("nope")

    results = parallel.par({"ok": (add, 1, 2), "bad": fails}, silent=True)
    assert results.succeeded == {"ok": 3}
    assert results.failed == {"bad": parallel.FailedTask(params=(), ex=LookupError("nope"))}


# -- timeouts ------------------------------------------------------------------

def test_timeout_raises_and_cancels_what_has_not_started():
    release = threading.Event()
    started = Counter()

    def blocked(_):
        started.add(1)
        release.wait(PATIENCE)

    try:
        with pytest.raises(parallel.TimeoutException) as info:
            parallel.map(blocked, range(50), max_workers=2, timeout=0.2)
        assert isinstance(info.value, TimeoutError)
        assert isinstance(info.value, concurrent.futures.TimeoutError)
        assert isinstance(info.value, parallel.exceptions.ParallelException)
    finally:
        release.set()
    time.sleep(0.1)  # the two running calls end; nothing else may start
    assert started.total == 2


def test_timeout_is_a_deadline_for_all_results():
    # Each call is short, but together they exceed the timeout.
    with pytest.raises(parallel.TimeoutException):
        parallel.map(time.sleep, [0.05] * 40, max_workers=1, timeout=0.3)


def test_results_in_time_are_returned():
    assert parallel.map(abs, [-1, -2], timeout=PATIENCE) == [1, 2]


def test_timeout_on_par():
    release = threading.Event()
    try:
        with pytest.raises(parallel.TimeoutException):
            parallel.par([(release.wait, PATIENCE), (abs, -1)], timeout=0.1)
    finally:
        release.set()


def test_pool_freed_after_timeout_serves_next_calls():
    release = threading.Event()
    try:
        with pytest.raises(parallel.TimeoutException):
            parallel.map(lambda _: release.wait(PATIENCE), range(3), timeout=0.05)
        # The timed-out items still run; a new call does not wait behind them.
        assert parallel.map(abs, [-1], timeout=PATIENCE) == [1]
    finally:
        release.set()


def test_ctrl_c_interrupts_a_blocked_map_at_once():
    # In a child interpreter: a hang must not hang the test run.
    code = textwrap.dedent("""
        import os, signal, threading, time
        import parallel
        release = threading.Event()
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        start = time.monotonic()
        try:
            parallel.map(lambda _: release.wait(30), range(4))
        except KeyboardInterrupt:
            print("interrupted after", round(time.monotonic() - start, 1))
        release.set()
        print(parallel.map(abs, [-1, -2]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("interrupted after") and float(lines[0].split()[-1]) < 10
    assert lines[1] == "[1, 2]"


# -- async API -----------------------------------------------------------------

def test_async_map_starts_at_once_and_returns_immediately():
    started = threading.Event()
    release = threading.Event()

    def work(i):
        started.set()
        release.wait(PATIENCE)
        return i * 10

    execution = parallel.async_map(work, [1, 2, 3])
    try:
        assert started.wait(PATIENCE)  # running before results() is asked
        assert not execution.done()
    finally:
        release.set()
    assert execution.results(timeout=PATIENCE) == [10, 20, 30]
    assert execution.done()


def test_async_results_timeout_does_not_cancel():
    release = threading.Event()
    execution = parallel.async_map(lambda i: release.wait(PATIENCE) and i, [1, 2])
    with pytest.raises(parallel.TimeoutException):
        execution.results(timeout=0.05)
    release.set()
    assert execution.results(timeout=PATIENCE) == [1, 2]


def test_async_context_manager_waits_on_clean_exit():
    finished = Counter()

    def work(i):
        time.sleep(0.02)
        finished.add(1)
        return i

    with parallel.async_map(work, range(6), max_workers=2) as execution:
        pass
    assert finished.total == 6
    assert execution.results() == list(range(6))


def test_async_context_manager_cancels_on_error():
    started = Counter()
    release = threading.Event()

    def work(_):
        started.add(1)
        release.wait(PATIENCE)

    with pytest.raises(RuntimeError, match="in the block"):
        with parallel.async_map(work, range(40), max_workers=2):
            assert wait_until(lambda: started.value == 2)
            raise RuntimeError("in the block")
    release.set()
    time.sleep(0.1)
    assert started.total == 2


def test_async_par_with_timeout_deadline():
    functions = {"a": (abs, -1), "b": parallel.future(pow, 2, 3)}
    with parallel.async_par(functions, max_workers=5) as execution:
        assert execution.results(timeout=4) == {"a": 1, "b": 8}
    release = threading.Event()
    try:
        execution = parallel.async_par([(release.wait, PATIENCE)], timeout=0.05)
        with pytest.raises(parallel.TimeoutException):
            execution.results()
    finally:
        release.set()


def test_async_errors_and_silent():
    execution = parallel.async_map(lambda x: 1 / x, [1, 0])
    with pytest.raises(ZeroDivisionError):
        execution.results()
    silent = parallel.async_map(lambda x: 1 / x, [1, 0], silent=True).results()
    assert silent.failed[0].params == (0,)


def test_cancelled_async_results_raise_cancelled_error():
    release = threading.Event()
    execution = parallel.async_map(lambda _: release.wait(PATIENCE), range(20), max_workers=1)
    execution.cancel()
    release.set()
    with pytest.raises(concurrent.futures.CancelledError):
        execution.results(timeout=PATIENCE)


# -- namespaces, executors -----------------------------------------------------

def test_thread_namespace():
    assert parallel.thread.map(add, [(1, 2)], extras=None) == [3]
    assert parallel.thread.par({"x": (add, 1, 1)}) == {"x": 2}
    assert parallel.thread.async_map(add, [(1, 2)]).results() == [3]
    assert parallel.thread.async_par([(add, 2, 2)]).results() == [4]
    with pytest.raises(TypeError):
        parallel.thread.map(add, [(1, 2)], executor="process")


def test_executor_instance_is_used_and_left_open():
    with concurrent.futures.ThreadPoolExecutor(3, thread_name_prefix="mine") as executor:
        names = parallel.map(lambda _: threading.current_thread().name, range(6),
                             executor=executor)
        assert all(name.startswith("mine") for name in names)
        assert parallel.par([(add, 1, 2)], executor=executor) == [3]
        # Still open: it takes new work.
        assert executor.submit(add, 2, 2).result(PATIENCE) == 4


def test_executor_instance_with_every_parameter_form_matches_threads():
    params = [1, (2, 3), ("a", {"k": 1}), {"k": 2}, parallel.arg({"d": 1})]
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        assert (parallel.map(describe, params, executor=executor, extras={"e": 0})
                == parallel.map(describe, params, extras={"e": 0}))


def test_max_workers_limits_calls_in_flight_on_an_executor_instance():
    running = Counter()

    def work(_):
        running.add(1)
        time.sleep(0.01)
        running.add(-1)

    with concurrent.futures.ThreadPoolExecutor(8) as executor:
        parallel.map(work, range(30), executor=executor, max_workers=2)
    assert running.total == 30 and running.peak <= 2


def test_errors_silent_and_timeout_on_an_executor_instance():
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        with pytest.raises(ZeroDivisionError):
            parallel.map(lambda x: 1 / x, [1, 0, 2], executor=executor)
        results = parallel.map(lambda x: 1 / x, {"a": 1, "b": 0}, executor=executor,
                               silent=True)
        assert results.failed == {"b": parallel.FailedTask(
            params=(0,), ex=ZeroDivisionError("division by zero"))}
        release = threading.Event()
        try:
            with pytest.raises(parallel.TimeoutException):
                parallel.map(lambda _: release.wait(PATIENCE), range(4),
                             executor=executor, timeout=0.05)
        finally:
            release.set()


# -- decorators ----------------------------------------------------------------

@parallel.decorate
def module_level_double(x):
    """Double x."""
    return 2 * x


def test_decorated_function_runs_verbatim_and_keeps_its_identity():
    assert module_level_double(21) == 42
    assert module_level_double.__name__ == "module_level_double"
    assert module_level_double.__doc__ == "Double x."
    assert module_level_double.__wrapped__(1) == 2


@pytest.mark.parametrize("decorator", [parallel.decorate, parallel.decorated])
def test_decorated_function_gains_parallel_methods(decorator):
    @decorator
    def triple(x, plus=0):
        return 3 * x + plus

    assert triple.map([1, 2]) == [3, 6]
    assert triple.map({"a": (1, {"plus": 1})}) == {"a": 4}
    assert triple.map([1], extras={"plus": 10}) == [13]
    assert triple.async_map([1, 2]).results() == [3, 6]
    assert triple.thread.map([3]) == [9]
    assert triple.thread.async_map([3]).results() == [9]
    assert parallel.par([triple.future(2, plus=1)]) == [7]
    assert triple.future(1) == parallel.future(triple, 1)


def test_decorator_options_are_the_defaults_of_map():
    @parallel.decorate(timeout=0.05, max_workers=1)
    def slow(_):
        time.sleep(0.2)

    with pytest.raises(parallel.TimeoutException):
        slow.map(range(3))
    # A call's own options win over the decorator's.
    assert slow.map([1], timeout=PATIENCE) == [None]

    @parallel.decorated(silent=True)
    def fragile(x):
        return 1 / x

    assert fragile.map([0, 1]).failures is True
    with pytest.raises(ZeroDivisionError):
        fragile.map([0], silent=False)


def test_decorator_refuses_bad_options():
    with pytest.raises(TypeError, match="by name"):
        parallel.decorate("process")
    with pytest.raises(ValueError, match="executor"):
        parallel.decorate(executor="gpu")
    with pytest.raises(ValueError, match="max_workers"):
        parallel.decorated(max_workers=-1)


def test_decorated_method_binds_self():
    class Scaler:
        def __init__(self, factor):
            self.factor = factor

        @parallel.decorate
        def scale(self, x):
            return self.factor * x

    scaler = Scaler(3)
    assert scaler.scale(2) == 6
    assert scaler.scale.map([1, 2]) == [3, 6]
    assert parallel.par([scaler.scale.future(5)]) == [15]


def test_named_tuple_is_one_argument_like_any_object():
    Point = collections.namedtuple("Point", "x y")
    assert parallel.map(describe, [Point(1, 2)]) == [((Point(1, 2),), [])]
