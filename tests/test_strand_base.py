"""strand.Taskrunner: argument composition, callbacks, errors."""
import pytest

import strand
from strand_support import add, squares

pytestmark = pytest.mark.timeout(60)


def collect(target):
    return lambda value: target.append(value)


def test_call_composes_init_args_call_args_and_kwargs():
    seen = []

    def func(*args, **kwargs):
        seen.append((args, kwargs))
        return "value"

    runner = strand.Taskrunner(func, 1, 2, on_end=None, key="init")
    assert runner(3, other="call") == "value"
    assert seen == [((1, 2, 3), {"key": "init", "other": "call"})]


def test_keyword_given_at_init_and_call_raises_like_a_call_would():
    runner = strand.Taskrunner(add, b=1)
    with pytest.raises(TypeError, match="multiple values for keyword argument 'b'"):
        runner(1, b=2)


def test_on_iter_gets_every_item_then_on_end_gets_the_return_value():
    events = []
    runner = strand.Taskrunner(squares, on_iter=lambda item: events.append(("item", item)),
                               on_end=lambda value: events.append(("end", value)))
    generator = runner(4)
    assert events[:4] == [("item", 0), ("item", 1), ("item", 4), ("item", 9)]
    assert events[4] == ("end", generator)


def test_on_iter_is_not_called_for_a_non_iterable_or_a_string():
    items = []
    strand.Taskrunner(add, on_iter=items.append)(1, 2)
    strand.Taskrunner(str.upper, on_iter=items.append)("abc")
    assert items == []


def test_exception_is_raised_without_on_error():
    runner = strand.Taskrunner(int)
    with pytest.raises(ValueError):
        runner("not a number")


def test_on_error_gets_the_exception_and_the_call_returns_none():
    errors = []
    runner = strand.Taskrunner(int, on_error=errors.append, on_end=pytest.fail)
    assert runner("x") is None
    assert len(errors) == 1 and isinstance(errors[0], ValueError)


def test_on_error_also_gets_errors_of_the_callbacks():
    errors = []

    def bad_callback(item):
        raise KeyError(item)

    strand.Taskrunner(squares, on_iter=bad_callback, on_error=errors.append)(3)
    assert [type(e) for e in errors] == [KeyError] and errors[0].args == (0,)


@pytest.mark.parametrize("name", ["on_iter", "on_end", "on_error"])
def test_a_callback_that_is_not_callable_is_refused(name):
    with pytest.raises(TypeError, match=name):
        strand.Taskrunner(add, **{name: 42})


def test_func_that_is_not_callable_is_refused():
    with pytest.raises(TypeError, match="must be callable"):
        strand.Taskrunner("add")


def test_runner_binds_as_a_method():
    class Counter:
        def __init__(self):
            self.total = 0

        @strand.as_task("sync")
        def bump(self, amount):
            self.total += amount
            return self.total

    counter = Counter()
    assert counter.bump(5) == 5 and counter.bump(2) == 7
