"""A real distributed engine as executor=: dask.distributed with two worker
processes.  parallel uses its executor as is, leaves it open, and gives the
same results as the thread executor."""
import os

import pytest

import parallel
from parallel_support import PATIENCE, add, describe, fail_on, pid_of

distributed = pytest.importorskip("distributed")

pytestmark = [pytest.mark.timeout(180)]


@pytest.fixture(scope="module", autouse=True)
def close_parallel_pools():
    yield
    parallel.shutdown()


@pytest.fixture(scope="module")
def dask_executor():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        yield client.get_executor()
    finally:
        client.close()
        cluster.close()


PARAMS = [1, (2, 3), ("a", {"k": 1}), {"k": 2}, parallel.arg({"d": 1}, k=4), ()]


def test_map_on_dask_matches_threads(dask_executor):
    expected = parallel.map(describe, PARAMS, extras={"e": 0})
    assert parallel.map(describe, PARAMS, extras={"e": 0}, executor=dask_executor) == expected
    named = {f"p{i}": p for i, p in enumerate(PARAMS)}
    assert parallel.map(describe, named, executor=dask_executor) == parallel.map(describe, named)


def test_par_on_dask_matches_threads(dask_executor):
    calls = {
        "future": parallel.future(describe, 1, k=2),
        "tuple": (add, 2, 3),
        "tuple_kwargs": (describe, "x", {"k": "v"}),
        "bare": os.getcwd,
    }
    assert parallel.par(calls, executor=dask_executor) == parallel.par(calls)
    echo = [(describe, 1), parallel.future(describe, k="own")]
    assert (parallel.par(echo, executor=dask_executor, extras={"k": 0})
            == parallel.par(echo, extras={"k": 0}))


def test_dask_runs_the_calls_in_its_worker_processes(dask_executor):
    pids = parallel.map(pid_of, range(8), executor=dask_executor, timeout=PATIENCE)
    assert os.getpid() not in pids


def test_errors_and_silent_mode_on_dask(dask_executor):
    with pytest.raises(ValueError, match="bad item 2"):
        parallel.map(fail_on, [1, 2, 3], extras={"bad": {2, 3}}, executor=dask_executor)
    results = parallel.map(fail_on, {"a": 1, "b": 2}, extras={"bad": {2}},
                           executor=dask_executor, silent=True)
    assert results.succeeded == {"a": 1}
    assert results.failed == {"b": parallel.FailedTask(
        params=(2,), kwargs={"bad": {2}}, ex=ValueError("bad item 2"))}


def test_dask_executor_is_left_open(dask_executor):
    parallel.map(add, [(1, 2)], executor=dask_executor)
    assert dask_executor.submit(add, 2, 2).result(PATIENCE) == 4
