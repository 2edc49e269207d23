"""Typed user code: every public entry point of pylateral, parallel and strand,
used as a program would, under ``mypy --strict`` (tests/test_typing.py runs
mypy on this file and then runs it).

Results go into annotated variables, so that a wrong type in the library's
annotations fails the type check; the asserts check the values at run time.
Run it with ``python tests/typed_examples.py`` (no network needed).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import parallel
import pylateral
import strand
from parallel.utils import split_collection
from pylateral.task_group_module import get_current_task_group
from pylateral.task_module import task
from pylateral.task_pool_module import TaskPool, task_pool
from pylateral.timeout import timeout
from pylateral.util import PoolTimeoutError
from strand.taskrunning import ThreadTaskrunner as PublishedThreadTaskrunner
from strand.taskrunning.utils import resolve_runner_cls

# --------------------------------------------------------------------------
# pylateral


@pylateral.task
def record(seen: list[int], i: int) -> None:
    seen.append(i)


@pylateral.task(has_return_value=True)
def double(i: int) -> int:
    return 2 * i


@task()
def nothing() -> None:
    pylateral.checkpoint()


@pylateral.cache_result(scope=pylateral.CacheScopes.PROCESS)
def settings(name: str) -> dict[str, str]:
    return {"name": name}


class Loader:
    @pylateral.task
    def load(self, seen: list[str], name: str) -> None:
        seen.append(name)


def pylateral_examples() -> None:
    seen: list[int] = []
    names: list[str] = []
    with pylateral.task_pool(max_workers=4, timeout=60) as pool:
        opened: TaskPool = pool
        for i in range(10):
            record(seen, i)
        Loader().load(names, "a")
        nothing()
        pylateral.join()
        current: object = pylateral.get_current_task_pool()
        assert current is not None
        with pylateral.task_group() as group:
            double(21)
            assert get_current_task_group() is group
        group_values: list[Any] = group.results
        assert group_values == [42]
        double(1)
    assert sorted(seen) == list(range(10)) and names == ["a"]
    values: list[Any] = opened.return_values()
    assert 2 in values
    workers: int = opened.max_workers
    limit: float | None = opened.timeout
    enabled: bool = opened.enabled
    blocks: bool = opened.block_when_saturated
    errors: list[BaseException] = opened.errors
    assert workers == 4 and limit == 60 and enabled and not blocks and not errors
    with task_pool(max_workers=2, progress=None):
        record(seen, 10)
    first: dict[str, str] = settings("x")
    assert settings("x") is first
    settings.clear_cache()
    with timeout(30, timeout_message="too slow"):
        pass
    caught: type[BaseException] = PoolTimeoutError
    assert issubclass(caught, pylateral.PylateralError)
    assert issubclass(pylateral.UnexpectedReturnValue, pylateral.PylateralError)
    version: str = pylateral.__version__
    assert version


# --------------------------------------------------------------------------
# parallel


def square(x: int) -> int:
    return x * x


def add(x: int, y: int = 0) -> int:
    return x + y


def chunk_sum(chunk: Sequence[int]) -> list[int]:
    return [sum(chunk)]


def fails(x: int) -> int:
    raise ValueError(x)


@parallel.decorate
def cube(x: int) -> int:
    return x ** 3


@parallel.decorated(executor=parallel.THREAD_EXECUTOR, max_workers=4)
def greet(name: str, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


def parallel_examples() -> None:
    squares: list[int] = parallel.map(square, [1, 2, 3], progress=False)
    by_key: dict[str, int] = parallel.map(square, {"a": 2, "b": 3})
    assert squares == [1, 4, 9] and by_key == {"a": 4, "b": 9}
    as_list: parallel.ListResult[int] = parallel.thread.map(add, [1, parallel.arg(3, y=4)],
                                                           extras={"y": 10})
    assert as_list == [11, 7]
    on_processes: parallel.ListResult[int] = parallel.process.map(square, [4, 5])
    assert on_processes == [16, 25]
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        elsewhere: list[int] = parallel.map(square, [6], executor=executor)
    assert elsewhere == [36]

    results: list[Any] = parallel.par([parallel.future(square, 2), (add, 1, 2), greet.future("a")])
    named: dict[str, Any] = parallel.par({"job": parallel.job(add, 1, y=1)})
    assert results == [4, 3, "hello a!"] and named == {"job": 2}

    with parallel.async_map(square, [1, 2]) as execution:
        later: parallel.ListResult[int] = execution.results(timeout=30)
    assert later == [1, 4] and execution.done()
    started: parallel.AsyncExecution[parallel.DictResult[str, Any]] = \
        parallel.async_par({"x": (square, 3)})
    assert started.results() == {"x": 9}
    awaited: parallel.ListResult[int] = asyncio.run(_await(parallel.async_map(square, [7])))
    assert awaited == [49]

    chunks: list[int] = parallel.split([1, 2, 3, 4], chunk_sum, workers=2)
    assert chunks == [3, 7]
    assert [list(c) for c in split_collection([1, 2, 3], 2)] == [[1, 2], [3]]

    plain: int = cube(2)
    cubes: parallel.ListResult[int] = cube.map([1, 2])
    keyed: parallel.DictResult[str, int] = cube.thread.map({"a": 3})
    forked: list[int] = cube.process.map([2])
    greetings: list[str] = greet.map([("x", "?")])
    pending: parallel.AsyncExecution[parallel.ListResult[str]] = greet.async_map(["y"])
    assert (plain, cubes, keyed, forked) == (8, [1, 8], {"a": 27}, [8])
    assert greetings == ["hello x?"] and pending.results() == ["hello y!"]

    outcome: parallel.ListResult[int] = parallel.map(fails, [1], silent=True)
    failed: list[parallel.FailedTask] = outcome.failed
    succeeded: list[int] = outcome.succeeded
    replaced: parallel.ListResult[int | None] = outcome.replace_failed(None)
    assert outcome.failures and not succeeded and replaced == [None]
    assert failed[0] == parallel.FailedTask(params=(1,), ex=ValueError(1))
    error: BaseException | None = failed[0].ex

    with parallel.ThreadExecutor([parallel.future(square, 3)]) as jobs:
        executor_results: parallel.ListResult[Any] | parallel.DictResult[Any, Any] = jobs.results()
    status: parallel.ParallelStatus = jobs.status
    assert executor_results == [9] and status is parallel.DONE and error is not None
    try:
        parallel.map(square, [1], timeout=30)
    except parallel.TimeoutException as exc:
        timed_out: TimeoutError = exc
        raise AssertionError(timed_out) from None
    parallel.shutdown()


async def _await(execution: parallel.AsyncExecution[parallel.ListResult[int]],
                 ) -> parallel.ListResult[int]:
    return await execution


# --------------------------------------------------------------------------
# strand


@strand.register_task
def shout(text: str) -> str:
    return text.upper()


@strand.register_task(name="typed-examples-whisper")
def whisper(text: str) -> str:
    return text.lower()


@strand.as_task
def background(x: int) -> int:
    return x + 1


ended: list[int] = []


@strand.as_task("sync", on_end=ended.append)
def at_once(x: int) -> int:
    return x - 1


def serve(ready_path: str) -> None:
    with open(ready_path, "w"):
        pass


def strand_examples() -> None:
    handle: strand.TaskHandle[int] = strand.ThreadTaskrunner(square)(3)
    assert handle.result(timeout=30) == 9 and handle.join(30) and handle.status == strand.COMPLETE
    on_thread: int = background(1).result(30)
    synchronous: Any = at_once(1)
    assert (on_thread, synchronous) == (2, 0) and ended == [0]
    published: strand.TaskHandle[int] = PublishedThreadTaskrunner(add, 1)(2)
    assert published.result(30) == 3
    assert resolve_runner_cls("thread") is strand.ThreadTaskrunner

    in_process: strand.ProcessTaskHandle[int] = strand.MultiprocessTaskrunner(square)(4)
    assert in_process.result(60) == 16
    coroutine_value: Any = strand.CoroutineTaskrunner(square)(5)
    assert coroutine_value == 25

    dispatched: strand.Dispatch[int] = strand.dispatch(square, [1, 2, strand.Args(3)])
    every: list[int | None] = dispatched.result(timeout=30)
    assert every == [1, 4, 9] and dispatched.counts()[strand.COMPLETE] == 3

    dispatcher = strand.TaskDispatcher()
    index: int = dispatcher.enqueue(square, args=(6,))
    assert dispatcher.run(timeout=30) and dispatcher.results[index] == 36

    store: dict[str, Any] = {}
    writer: strand.StoreTaskWriter[str] = strand.StoreTaskWriter(shout, store)
    stored: strand.StoreTask[str] = writer("hi")
    with strand.StoreTaskReader(store, progress=False) as reader:
        listening: bool = reader.listening
        assert stored.result(timeout=30) == "HI" and listening
    ran: int = strand.StoreTaskReader(store).run_pending()
    assert ran == 0 and "typed-examples-whisper" in strand.registry
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_store = strand.open_store(os.path.join(tmp, "tasks.db"))
        later = strand.StoreTaskWriter(whisper, sqlite_store).submit(("HEY",), delay=0)
        assert strand.StoreTaskReader(sqlite_store).run_pending() == 1
        assert later.result(timeout=30) == "hey"
        ready = os.path.join(tmp, "ready")
        with strand.run_process(serve, (ready,), is_ready=lambda: os.path.exists(ready)) \
                as process:
            assert process is not None
    assert strand.thread_pool().max_workers >= 4


def main() -> None:
    pylateral_examples()
    parallel_examples()
    strand_examples()
    print("typed examples: all ran")


if __name__ == "__main__":
    main()
