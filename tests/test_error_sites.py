"""Errors that name the failing call (issue 12, part 3): a pylateral task's
error names the call that queued it; a parallel error names its item or key;
a timeout names the late calls, and silent mode keeps the finished results;
task_pool(halt_on_error=False) runs every task and raises one TaskErrors."""
import concurrent.futures
import signal
import sys
import threading
import time
import traceback

import pytest

import parallel
import pylateral
from parallel.exceptions import TimeoutException
from parallel_support import fail_on
from pylateral_support import (  # noqa: F401  (fixtures are used by name)
    PATIENCE, Counter, isolated_pylateral, pylateral_threads, wait_until,
)

pytestmark = pytest.mark.timeout(120)

#: A deadline that a call returning at once meets even on a loaded machine;
#: the late calls of the timeout tests wait for an event instead.
DEADLINE = 2.0


def next_line():
    """The number of the caller's next line."""
    return sys._getframe(1).f_lineno + 1


def caller_name(fn):
    """How a note names the function that made a call: its qualified name
    (3.11+ code objects have one), its bare name on 3.10."""
    fn = getattr(fn, "__wrapped__", fn)
    return fn.__qualname__ if sys.version_info >= (3, 11) else fn.__name__


def added_notes(exc):
    """The notes lateral added to ``exc``: ``__notes__`` on 3.11+; on 3.10
    the lines appended to the message, or ``__notes__`` when the message
    is not all ``str()`` shows."""
    if sys.version_info >= (3, 11):
        return list(exc.__notes__)
    return str(exc).splitlines()[1:] + list(getattr(exc, "__notes__", []))


# -- pylateral: the call that queued a failed task -----------------------------

@pylateral.task
def takes_one(a):
    """Fails when called with two arguments."""


@pylateral.task
def reject(record):
    raise LookupError(f"no such record {record}")


def test_wrong_arguments_name_the_call_that_queued_the_task():
    with pytest.raises(TypeError) as info:
        with pylateral.task_pool(max_workers=2):
            line = next_line()
            takes_one(1, 2)
    me = test_wrong_arguments_name_the_call_that_queued_the_task.__qualname__
    assert added_notes(info.value) == [f"task takes_one(...) queued at {__file__}:{line} in {me}"]
    assert "takes 1 positional argument but 2 were given" in str(info.value)


def test_any_task_error_names_its_call_even_from_a_task():
    @pylateral.task
    def parent():
        reject("r7")

    with pytest.raises(LookupError) as info:
        with pylateral.task_pool(max_workers=2):
            parent()
    notes = added_notes(info.value)
    assert len(notes) == 1
    assert notes[0].startswith("task reject(...) queued at " + __file__ + ":")
    assert notes[0].endswith(" in " + caller_name(parent))


def test_a_printed_traceback_shows_the_call_site():
    with pytest.raises(LookupError) as info:
        with pylateral.task_pool(max_workers=1):
            line = next_line()
            reject("r1")
    printed = "".join(traceback.format_exception(info.value))
    assert f"queued at {__file__}:{line}" in printed


def test_an_exception_whose_message_is_its_key_keeps_it():
    # KeyError's str() is the repr of its key: on 3.10 the note goes to
    # __notes__, not into the key.
    @pylateral.task
    def lookup():
        return {}["k"]

    with pytest.raises(KeyError) as info:
        with pylateral.task_pool(max_workers=1):
            lookup()
    assert info.value.args == ("k",)
    assert info.value.__notes__[0].startswith("task ")
    if sys.version_info < (3, 11):
        assert str(info.value) == "'k'"


@pytest.mark.parametrize("in_message", [False, True])
def test_add_note_puts_the_note_where_this_python_shows_it(in_message):
    import _lateral
    exc = ValueError("bad value")
    _lateral.add_note(exc, "where it happened", in_message=in_message)
    if sys.version_info >= (3, 11) or not in_message:
        assert exc.__notes__ == ["where it happened"]
        assert exc.args == ("bad value",)
    else:
        assert exc.args == ("bad value\nwhere it happened",)
    with pytest.raises(TypeError):
        _lateral.add_note(exc, 3)


# -- parallel: the item or key that failed -------------------------------------

EXECUTORS = {
    "thread": parallel.THREAD_EXECUTOR,
    "process": parallel.PROCESS_EXECUTOR,
    "ThreadPoolExecutor": "tpe",
}


@pytest.fixture(params=sorted(EXECUTORS))
def executor(request):
    """Each kind of executor: the core's threads, parallel's processes and
    an arbitrary concurrent.futures.Executor."""
    if EXECUTORS[request.param] != "tpe":
        yield EXECUTORS[request.param]
        return
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        yield pool


def test_map_names_the_index_and_argument_of_the_failed_item(executor):
    with pytest.raises(ValueError, match="bad item 7") as info:
        parallel.map(fail_on, [1, 2, 3, 7, 9], extras={"bad": (7,)}, executor=executor)
    assert added_notes(info.value) == ["parallel.map item 3 (argument 7) failed"]


def test_map_over_a_dict_names_the_key(executor):
    with pytest.raises(ValueError) as info:
        parallel.map(fail_on, {"a": 1, "b": 7}, extras={"bad": (7,)}, executor=executor)
    assert added_notes(info.value) == ["parallel.map key 'b' (argument 7) failed"]


def test_par_names_the_key_and_function_of_the_failed_call(executor):
    calls = {"ok": (fail_on, 1), "broken": (fail_on, 7, {"bad": (7,)})}
    with pytest.raises(ValueError) as info:
        parallel.par(calls, executor=executor)
    assert added_notes(info.value) == ["parallel.par key 'broken' (fail_on) failed"]


def test_a_long_argument_is_cut_short():
    with pytest.raises(ValueError) as info:
        parallel.map(fail_on, ["x" * 1000], extras={"bad": ("x" * 1000,)})
    note, = added_notes(info.value)
    assert note.startswith("parallel.map item 0 (argument 'xxx")
    assert len(note) < 120


# -- parallel: timeouts name the late calls; silent mode keeps the rest --------

def wait_for(event):
    return event.wait(PATIENCE)


def wait_if_event(value):
    """Waits for ``value`` if it is an event, else returns it at once."""
    return wait_for(value) if isinstance(value, threading.Event) else value


def test_par_timeout_names_the_late_keys():
    release = threading.Event()
    try:
        with pytest.raises(TimeoutException) as info:
            parallel.par({"fast": (len, "ab"), "stuck": (wait_for, release),
                          "stuck too": (wait_for, release)}, timeout=DEADLINE)
    finally:
        release.set()
    message = str(info.value)
    assert "late: keys 'stuck', 'stuck too'" in message
    assert "'fast'" not in message
    assert isinstance(info.value, TimeoutError)


def test_map_timeout_names_the_late_items():
    release = threading.Event()
    try:
        with pytest.raises(TimeoutException, match=r"\(late: item 1\)"):
            parallel.map(wait_if_event, [0, release, 2], timeout=DEADLINE)
    finally:
        release.set()


def test_silent_par_keeps_finished_results_past_the_timeout():
    release = threading.Event()
    try:
        results = parallel.par({"fast": (len, "ab"), "stuck": (wait_for, release)},
                               timeout=DEADLINE, silent=True)
    finally:
        release.set()
    assert results["fast"] == 2
    late = results["stuck"]
    assert isinstance(late, parallel.FailedTask)
    assert isinstance(late.ex, TimeoutError)
    assert results.failures
    assert results.succeeded == {"fast": 2}
    assert list(results.failed) == ["stuck"]


def test_silent_async_par_past_its_deadline_gives_the_same_results():
    release = threading.Event()
    try:
        with parallel.async_par([(len, "abc"), (wait_for, release)], timeout=DEADLINE,
                                silent=True) as execution:
            results = execution.results()
            assert execution.results() is results
    finally:
        release.set()
    assert results[0] == 3
    assert isinstance(results[1].ex, TimeoutError)


def sleep_then_return(seconds):
    time.sleep(seconds)
    return seconds


def test_silent_map_on_processes_keeps_finished_results_past_the_timeout():
    results = parallel.process.map(sleep_then_return, [0, 0, 60], timeout=DEADLINE,
                                   silent=True, max_workers=3)
    assert results[:2] == [0, 0]
    assert isinstance(results[2], parallel.FailedTask)
    assert isinstance(results[2].ex, TimeoutError)


# -- pylateral: halt_on_error=False --------------------------------------------

def test_halt_on_error_false_runs_every_task_and_raises_one_group():
    ran = Counter()

    @pylateral.task(has_return_value=True)
    def load(record):
        ran.add()
        if record % 40 == 3:
            raise ValueError(f"bad record {record}")
        return record

    with pytest.raises(pylateral.TaskErrors) as info:
        with pylateral.task_pool(max_workers=4, halt_on_error=False) as pool:
            line = next_line()
            for record in range(120):
                load(record)
    group = info.value
    assert ran.value == 120
    assert sorted(pool.results) == [r for r in range(120) if r % 40 != 3]
    assert group.message == "3 of 120 tasks failed"
    assert list(group.exceptions) == list(pool.errors)
    assert sorted(str(e).splitlines()[0] for e in group.exceptions) == [
        "bad record 3", "bad record 43", "bad record 83"]
    me = test_halt_on_error_false_runs_every_task_and_raises_one_group.__qualname__
    for error in group.exceptions:
        assert added_notes(error) == [f"task {load.__qualname__}(...) queued at "
                                      f"{__file__}:{line + 1} in {me}"]
    assert isinstance(group, pylateral.PylateralError)
    if sys.version_info >= (3, 11):
        assert isinstance(group, ExceptionGroup)  # noqa: F821
        matched, rest = group.split(ValueError)
        assert len(matched.exceptions) == 3 and rest is None
    else:
        assert str(group).startswith("3 of 120 tasks failed\n")
    assert pylateral_threads() == []


def test_halt_on_error_false_with_nested_tasks_and_join():
    parents_done = Counter()

    @pylateral.task
    def child(i):
        if i == 1:
            raise KeyError(i)

    @pylateral.task
    def parent(n):
        for i in range(n):
            child(i)
        parents_done.add()

    with pytest.raises(pylateral.TaskErrors) as info:
        with pylateral.task_pool(max_workers=3, halt_on_error=False) as pool:
            parent(3)
            pool.join()  # errors are not raised here
            assert len(pool.errors) == 1
            pylateral.join()
            parent(2)
    assert parents_done.value == 2
    assert info.value.message == "2 of 7 tasks failed"
    for error in info.value.exceptions:
        assert error.__notes__[0].endswith(" in " + caller_name(parent))


def test_halt_on_error_false_without_errors_raises_nothing():
    with pylateral.task_pool(halt_on_error=False) as pool:
        takes_one(1)
    assert pool.errors == [] and pool.halt_on_error is False


def test_halt_on_error_false_in_an_inline_pool(monkeypatch):
    monkeypatch.setenv("PYLATERAL_ENABLED", "false")
    after = Counter()
    with pytest.raises(pylateral.TaskErrors) as info:
        with pylateral.task_pool(halt_on_error=False) as pool:
            line = next_line()
            reject("r1")
            after.add()
            takes_one(1, 2)
            after.add()
    assert not pool.enabled and after.value == 2
    assert info.value.message == "2 of 2 tasks failed"
    first, second = info.value.exceptions
    assert added_notes(first)[0].endswith(f"{__file__}:{line} in "
                                          f"{test_halt_on_error_false_in_an_inline_pool.__qualname__}")
    assert isinstance(second, TypeError)


def test_halt_on_error_false_still_halts_on_ctrl_c():
    started, finished, stop = threading.Event(), Counter(), threading.Event()

    @pylateral.task
    def busy():
        started.set()
        while not stop.is_set():  # user code: a safe point at every line
            time.sleep(0.01)
        finished.add()

    with pytest.raises(KeyboardInterrupt):
        with pylateral.task_pool(max_workers=1, halt_on_error=False) as pool:
            reject("r1")
            busy()
            busy()  # queued behind the first: dropped by the halt
            assert started.wait(PATIENCE)
            signal.raise_signal(signal.SIGINT)
            stop.wait(PATIENCE)  # interrupted here
    stop.set()
    assert finished.value == 0
    assert [type(e) for e in pool.errors] == [LookupError]
    assert pylateral_threads() == []


def test_halt_on_error_false_still_halts_on_a_task_base_exception():
    @pylateral.task
    def leave():
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        with pylateral.task_pool(max_workers=1, halt_on_error=False):
            leave()


@pytest.mark.parametrize("value", ["no", None, 0])
def test_halt_on_error_must_be_a_bool(value):
    with pytest.raises(TypeError, match=r"halt_on_error must be True or False, got "):
        pylateral.task_pool(halt_on_error=value)


def test_the_default_still_halts_at_the_first_error():
    ran = Counter()

    @pylateral.task
    def step(i):
        ran.add()
        if i == 0:
            raise ValueError("first")

    with pytest.raises(ValueError, match="first") as info:
        with pylateral.task_pool(max_workers=1) as pool:
            step(0)
            assert wait_until(lambda: pool.errors)
            for i in range(1, 50):
                step(i)
    assert ran.value == 1
    assert not isinstance(info.value, pylateral.TaskErrors)
