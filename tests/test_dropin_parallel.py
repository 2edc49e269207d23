"""Drop-in compatibility with the published python-parallel 0.9.1: its module
paths and names (``job``, ``split``, ``ThreadExecutor``, ``models``,
``utils``), ``FailedTask`` built either way, ``AsyncExecution.start()``,
``par(unpack_arguments=False)``, and the one unpacking rule every path uses."""
import collections
import concurrent.futures

import pytest

import parallel
import parallel.exceptions
import parallel.models
import parallel.utils
import strand
from parallel_support import Counter, add, describe

pytestmark = [pytest.mark.timeout(120)]


class Failure(Exception):
    """An exception whose copies compare equal by type and args."""

    def __eq__(self, other):
        return type(self) is type(other) and self.args == other.args

    __hash__ = Exception.__hash__


def fail_on_text(value, result="ok"):
    if isinstance(value, str):
        raise Failure(value)
    return result


def squares(chunk):
    return [x * x for x in chunk]


def scaled(chunk, factor=1):
    return [x * factor for x in chunk]


# --- names and module paths -------------------------------------------------------

def test_published_names_and_paths():
    assert parallel.job is parallel.future
    assert parallel.models.ParallelJob is parallel.ParallelJob
    assert parallel.models.ParallelArg is parallel.ParallelArg is parallel.arg
    assert parallel.models.FailedTask is parallel.FailedTask
    assert parallel.models.SequentialMapResult is parallel.ListResult
    assert parallel.models.NamedMapResult is parallel.DictResult
    assert parallel.utils.split_collection is not None
    assert parallel.exceptions.BaseParallelException is parallel.exceptions.ParallelException
    assert issubclass(parallel.exceptions.ParallelStatusException,
                      parallel.exceptions.BaseParallelException)
    assert [parallel.NOT_STARTED, parallel.STARTED, parallel.DONE, parallel.FAILED] \
        == list(parallel.ParallelStatus)


def test_job_is_a_future_and_par_runs_jobs_built_either_way():
    results = parallel.par({
        "old": parallel.job(add, 1, y=2),
        "model": parallel.ParallelJob(add, args=(3, 4)),
        "listed": parallel.ParallelJob(add, args=[5], kwargs={"y": 6}),
    })
    assert results == {"old": 3, "model": 7, "listed": 11}
    assert parallel.job(add, 1, y=2) == parallel.ParallelJob(add, None, (1,), {"y": 2})


def test_parallel_job_equality_and_defaults():
    job = parallel.ParallelJob(add)
    assert (job.fn, job.name, job.args, job.kwargs) == (add, None, (), {})
    assert parallel.ParallelJob(add, "a", [1, 2]) == parallel.ParallelJob(add, "a", (1, 2))
    assert parallel.ParallelJob(add, "a", (1,)) != parallel.ParallelJob(add, "b", (1,))
    assert parallel.ParallelJob(add, args=(1,)) != parallel.ParallelJob(describe, args=(1,))


# --- split ---------------------------------------------------------------------

@pytest.mark.parametrize("collection, chunks, expected", [
    ([1, 2, 3, 4], 2, [[1, 2], [3, 4]]),
    ([1, 2, 3, 4, 5], 2, [[1, 2, 3], [4, 5]]),
    (list(range(10)), 4, [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]),
    ((1, 2, 3), 2, [(1, 2), (3,)]),
    ([1, 2], 5, [[1], [2]]),          # never an empty chunk
    ([], 3, []),
    (range(5), 2, [range(0, 3), range(3, 5)]),
])
def test_split_collection_cuts_equal_consecutive_chunks(collection, chunks, expected):
    assert list(parallel.utils.split_collection(collection, chunks)) == expected


def test_split_collection_checks_its_input_at_the_call():
    with pytest.raises(TypeError, match="got set"):
        parallel.utils.split_collection({1, 2}, 2)
    with pytest.raises(ValueError, match="chunks must be greater than 0, got 0"):
        parallel.utils.split_collection([1], 0)


@pytest.mark.parametrize("run", [
    lambda coll, fn, **kw: parallel.split(coll, fn, **kw),
    lambda coll, fn, **kw: parallel.thread.split(coll, fn, **kw),
    lambda coll, fn, **kw: parallel.process.split(coll, fn, **kw),
    lambda coll, fn, **kw: parallel.split(coll, fn, executor=parallel.PROCESS_EXECUTOR, **kw),
], ids=["parallel", "thread", "process", "executor=process"])
def test_split_concatenates_the_chunks_results_in_order(run):
    assert run(list(range(1, 8)), squares, workers=3) == [x * x for x in range(1, 8)]
    assert run((1, 2, 3), scaled, workers=2, extras={"factor": 10}) == [10, 20, 30]
    assert run([], squares, workers=2) == []


def test_split_calls_fn_once_per_chunk_on_at_most_workers_threads():
    chunks_seen = []

    def record(chunk):
        chunks_seen.append(list(chunk))
        return chunk

    assert parallel.split(list(range(6)), record, workers=4) == list(range(6))
    assert sorted(chunks_seen) == [[0, 1], [2, 3], [4, 5]]


def test_split_propagates_a_chunks_exception():
    with pytest.raises(ValueError, match="bad chunk"):
        parallel.split([1, 2, 3, 4], lambda chunk: (_ for _ in ()).throw(ValueError("bad chunk")),
                       workers=2)


# --- FailedTask --------------------------------------------------------------

def test_failed_task_built_either_way_compares_equal():
    documented = parallel.FailedTask(params=("a", 5), kwargs={"k": 1}, ex=Failure("a"))
    published = parallel.FailedTask(parallel.ParallelJob(add, "r2", ("a", 5), {"k": 1}),
                                    exc=Failure("a"))
    positional = parallel.FailedTask(parallel.ParallelJob(add, args=("a", 5), kwargs={"k": 1}),
                                     Failure("a"))
    assert documented == published == positional
    assert published.exc is published.ex and published.job.name == "r2"
    assert published != parallel.FailedTask(params=("a", 5), kwargs={"k": 1}, ex=Failure("b"))
    assert published != parallel.FailedTask(params=("a", 6), kwargs={"k": 1}, ex=Failure("a"))


def test_failed_task_refuses_two_exceptions():
    with pytest.raises(TypeError, match="ex= or exc=, not both"):
        parallel.FailedTask(params=(), ex=Failure(), exc=Failure())
    with pytest.raises(TypeError, match="takes no kwargs"):
        parallel.FailedTask(parallel.ParallelJob(add), Failure(), Failure())


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_silent_failures_carry_their_job(executor):
    results = parallel.map(fail_on_text, {"good": (1,), "bad": ("x", {"result": "r"})},
                           executor=executor, silent=True)
    failed = results["bad"]
    assert failed == parallel.FailedTask(parallel.ParallelJob(fail_on_text, "bad", ("x",),
                                                              {"result": "r"}), Failure("x"))
    assert (failed.job.fn, failed.job.name) == (fail_on_text, "bad")
    assert failed.params == ("x",) and failed.kwargs == {"result": "r"}

    calls = parallel.par([(fail_on_text, 1), (fail_on_text, "y")], silent=True)
    assert calls[1].job == parallel.ParallelJob(fail_on_text, None, ("y",), {})


def test_failed_task_built_from_params_has_a_job_without_function():
    failed = parallel.FailedTask(params=[1], kwargs={"k": 2}, ex=Failure())
    assert failed.job == parallel.ParallelJob(None, None, (1,), {"k": 2})


# --- AsyncExecution.start() ------------------------------------------------------

def test_async_execution_start_is_harmless():
    calls = Counter()

    def counted(x):
        calls.add()
        return x + 1

    execution = parallel.async_map(counted, [1, 2, 3])
    assert execution.start() is execution
    assert execution.start() is execution
    assert execution.results() == [2, 3, 4]
    execution.shutdown()
    assert calls.value == 3


# --- par(unpack_arguments=False) -------------------------------------------------

def test_par_without_unpacking_passes_the_arguments_as_they_are():
    entries = [(describe, (1, 2)), (describe, 1, {"k": 1}), parallel.future(describe, k=2)]
    assert parallel.par(entries, unpack_arguments=False) == [
        (((1, 2),), []), ((1, {"k": 1}), []), ((), [("k", 2)])]
    assert parallel.par(entries) == [(((1, 2),), []), ((1,), [("k", 1)]), ((), [("k", 2)])]
    with parallel.async_par({"a": (describe, {"d": 1})}, unpack_arguments=False) as execution:
        assert execution.results() == {"a": (({"d": 1},), [])}
    assert parallel.process.par([(describe, 1, {"k": 1})], unpack_arguments=False) \
        == [((1, {"k": 1}), [])]


# --- ThreadExecutor / ProcessExecutor --------------------------------------------

def test_thread_executor_runs_jobs_between_start_and_shutdown():
    ran = Counter()

    def job_fn(x, y=0):
        ran.add()
        return x + y

    executor = parallel.ThreadExecutor([parallel.ParallelJob(job_fn, args=(1,)),
                                        parallel.ParallelJob(job_fn, args=(2,), kwargs={"y": 3})])
    assert executor.status is parallel.NOT_STARTED and ran.value == 0
    with pytest.raises(parallel.exceptions.ParallelStatusException):
        executor.results()
    executor.start()
    with pytest.raises(parallel.exceptions.ParallelStatusException):
        executor.start()
    assert executor.results() == [1, 5]
    assert executor.status is parallel.DONE
    executor.shutdown()
    assert ran.value == 2


def test_thread_executor_errors_and_silent_mode():
    jobs = [parallel.ParallelJob(fail_on_text, args=("boom",)),
            parallel.ParallelJob(fail_on_text, args=(1,))]
    loud = parallel.ThreadExecutor(jobs)
    with loud:
        with pytest.raises(Failure, match="boom"):
            loud.results()
    assert loud.status is parallel.FAILED

    with parallel.ThreadExecutor(jobs, silent=True) as quiet:
        assert quiet.results() == [parallel.FailedTask(jobs[0], Failure("boom")), "ok"]
    assert quiet.status is parallel.DONE


def test_executors_give_named_results_and_run_on_processes():
    jobs = [parallel.ParallelJob(add, "first", (1, 2)), parallel.ParallelJob(add, "second", (3, 4))]
    with parallel.ProcessExecutor(jobs, ResultClass=parallel.NamedMapResult) as executor:
        assert executor.results() == {"first": 3, "second": 7}
        assert isinstance(executor.results(), parallel.DictResult)


def test_executor_timeout_raises_timeout_exception_and_stays_started():
    release = concurrent.futures.Future()
    executor = parallel.ThreadExecutor([parallel.job(release.result, 30)], timeout=30)
    executor.start()
    with pytest.raises(parallel.TimeoutException):
        executor.results(timeout=0.05)
    assert executor.status is parallel.STARTED
    release.set_result("done")
    assert executor.results() == ["done"]
    executor.shutdown()


# --- one unpacking rule --------------------------------------------------------

Point = collections.namedtuple("Point", "x y")

#: (parameter, the call it makes): docs/parallel.md's table.
PARAMETER_FORMS = [
    ("single", (("single",), {})),
    ((1, 2), ((1, 2), {})),
    ((1, {"k": 2}), ((1,), {"k": 2})),
    ([1, 2, {"k": 3}], ((1, 2), {"k": 3})),
    ([{"p": 1}], ((), {"p": 1})),
    ({"k": 4}, ((), {"k": 4})),
    ((), ((), {})),
    (Point(1, 2), ((Point(1, 2),), {})),
    (parallel.arg([1], {"d": 2}, k=5), (([1], {"d": 2}), {"k": 5})),
    ({1, 2}, (({1, 2},), {})),
]


def expected_calls(forms=PARAMETER_FORMS):
    return [describe(*args, **kwargs) for _, (args, kwargs) in forms]


@pytest.mark.parametrize("executor", ["thread", "process", "generic executor"])
def test_map_unpacks_every_form_alike_on_every_executor(executor):
    params = [param for param, _ in PARAMETER_FORMS]
    if executor == "generic executor":
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            results = parallel.map(describe, params, executor=pool)
    else:
        results = parallel.map(describe, params, executor=executor)
    assert results == expected_calls()


def test_parallel_job_models_use_the_same_rule():
    for param, (args, kwargs) in PARAMETER_FORMS:
        assert parallel.ParallelJob.normalize_params(param) == (args, kwargs)
    jobs = parallel.ParallelJob.build_for_callable_from_params(
        describe, {"a": (1, {"k": 1})}, extras={"e": 1})
    assert jobs == [parallel.ParallelJob(describe, "a", (1,), {"e": 1, "k": 1})]
    calls = parallel.ParallelJob.build_jobs_from_params(
        [(describe, 1, {"k": 1}), parallel.job(describe, 2)], extras={"e": 2})
    assert calls == [parallel.ParallelJob(describe, None, (1,), {"e": 2, "k": 1}),
                     parallel.ParallelJob(describe, None, (2,), {"e": 2})]


def test_strand_dispatch_uses_the_same_rule():
    forms = [(param, call) for param, call in PARAMETER_FORMS
             if not isinstance(param, parallel.arg)]
    forms.append((strand.Args(1, k=2), ((1,), {"k": 2})))
    dispatched = strand.dispatch(describe, [param for param, _ in forms])
    assert dispatched.result(60) == expected_calls(forms)


def test_without_unpacking_only_parallel_arg_is_unpacked():
    params = [(1, 2), {"k": 1}, [1], parallel.arg(1, k=2)]
    assert parallel.map(describe, params, unpack_arguments=False) == [
        (((1, 2),), []), (({"k": 1},), []), (([1],), []), ((1,), [("k", 2)])]
    assert parallel.ParallelJob.normalize_params({"k": 1}, unpack_arguments=False) \
        == (({"k": 1},), {})
