"""strand.CoroutineTaskrunner: awaitable in a running loop, usable from sync code."""
import asyncio

import pytest

import strand

pytestmark = pytest.mark.timeout(60)


async def double_later(x):
    await asyncio.sleep(0.001)
    return 2 * x


def test_synchronous_call_runs_to_completion_and_returns_the_value():
    ends = []
    runner = strand.CoroutineTaskrunner(double_later, on_end=ends.append)
    assert runner(21) == 42 and ends == [42]


def test_call_in_a_running_loop_schedules_a_task_and_returns_it():
    async def main():
        task = strand.CoroutineTaskrunner(double_later)(5)
        assert isinstance(task, asyncio.Task)
        return await task

    assert asyncio.run(main()) == 10


def test_calls_in_a_loop_run_concurrently():
    async def main():
        first_started = asyncio.Event()

        async def waiter():
            first_started.set()
            await asyncio.sleep(0)
            return "waiter"

        async def needs_the_other():
            await asyncio.wait_for(first_started.wait(), 30)
            return "other"

        runner_a = strand.CoroutineTaskrunner(needs_the_other)
        runner_b = strand.CoroutineTaskrunner(waiter)
        return await asyncio.gather(runner_a(), runner_b())

    assert asyncio.run(main()) == ["other", "waiter"]


def _interleaving(yield_on_iter):
    order = []

    async def main():
        runners = [strand.CoroutineTaskrunner(lambda name=name: [name] * 3,
                                              on_iter=order.append,
                                              yield_on_iter=yield_on_iter)
                   for name in "ab"]
        await asyncio.gather(*(runner() for runner in runners))

    asyncio.run(main())
    return order


def test_yield_on_iter_lets_other_tasks_run_between_items():
    assert _interleaving(True) == ["a", "b", "a", "b", "a", "b"]


def test_without_yield_on_iter_items_are_delivered_in_one_go():
    assert _interleaving(False) == ["a", "a", "a", "b", "b", "b"]


def test_async_iterables_and_async_callbacks():
    items = []

    async def numbers(n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    async def on_item(item):
        await asyncio.sleep(0)
        items.append(item)

    strand.CoroutineTaskrunner(numbers, on_iter=on_item)(3)
    assert items == [0, 1, 2]


def test_plain_function_result_and_init_args():
    assert strand.CoroutineTaskrunner(pow, 2)(10) == 1024


def test_exception_propagates_or_goes_to_on_error():
    async def broken():
        raise KeyError("k")

    with pytest.raises(KeyError):
        strand.CoroutineTaskrunner(broken)()
    errors = []
    assert strand.CoroutineTaskrunner(broken, on_error=errors.append)() is None
    assert isinstance(errors[0], KeyError)


def test_exception_of_a_scheduled_task_is_raised_by_await():
    async def broken():
        raise KeyError("k")

    async def main():
        with pytest.raises(KeyError):
            await strand.CoroutineTaskrunner(broken)()

    asyncio.run(main())
