"""strand.as_task: the decorator, every target, and bad targets."""
import asyncio
import threading

import pytest

import strand
from strand_support import long_blocking_function

pytestmark = pytest.mark.timeout(60)


def test_document_decorator_syntax_with_integer_arguments(capsys):
    def handle_chunk(chunk):
        print(f'got a chunk: {chunk}')

    @strand.as_task(on_iter=handle_chunk)
    def decorated(total_size, chunk_size):
        return long_blocking_function(total_size, chunk_size)

    # the function will run in a thread
    handle = decorated(10 ** 4, 10 ** 3)
    assert isinstance(handle, strand.TaskHandle)
    assert handle.join(30)
    out = capsys.readouterr().out.splitlines()
    assert out == [f"got a chunk: range({n * 1000}, {(n + 1) * 1000})" for n in range(10)]


@pytest.mark.parametrize("target, runner_class", sorted(strand.TARGETS.items()))
def test_every_string_target_makes_its_runner(target, runner_class):
    extra = {"store": {}} if target == "store" else {}
    runner = strand.as_task(target, **extra)(thread_name)
    assert type(runner) is runner_class
    assert runner.__name__ == "thread_name" and runner.__doc__ == "The caller's thread name."


def thread_name():
    """The caller's thread name."""
    return threading.current_thread().name


def test_default_target_is_thread_and_bare_decorator_works():
    @strand.as_task
    def bare():
        return thread_name()

    @strand.as_task()
    def called():
        return thread_name()

    assert bare().result(30).startswith("strand-")
    assert called().result(30).startswith("strand-")


def test_sync_target_runs_at_once_in_the_caller():
    assert strand.as_task("sync")(thread_name)() == threading.current_thread().name


def test_process_target_returns_a_process_handle():
    handle = strand.as_task("process")(len)("abc")
    assert isinstance(handle, strand.ProcessTaskHandle) and handle.result(60) == 3


def test_coroutine_target():
    @strand.as_task("coroutine", yield_on_iter=False)
    async def doubled(x):
        await asyncio.sleep(0)
        return 2 * x

    assert doubled(4) == 8


def test_store_target_writes_a_task():
    store = {}
    task = strand.as_task("store", store=store)(thread_name)()
    assert store[task.id]["name"] == "thread_name" and store[task.id]["status"] == "new"


def test_taskrunner_subclass_target():
    class Doubling(strand.Taskrunner):
        def __call__(self, *args, **kwargs):
            return 2 * super().__call__(*args, **kwargs)

    assert strand.as_task(Doubling)(len)("abc") == 6


@pytest.mark.parametrize("bad", ["threads", "", 3, dict])
def test_unknown_target_raises_value_error_listing_the_valid_ones(bad):
    with pytest.raises(ValueError) as info:
        strand.as_task(bad)
    message = str(info.value)
    for name in ("'thread'", "'process'", "'coroutine'", "'store'", "'sync'",
                 "Taskrunner subclass"):
        assert name in message
