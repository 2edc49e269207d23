"""The @pylateral.task decorator."""
import functools

import _lateral


def task(fn=None, *, has_return_value=False):
    """Mark ``fn`` as a task: inside a task pool each call is queued on a pool
    thread and returns ``None`` at once; outside one, the call runs serially.

    Usable as ``@task``, ``@task()`` or ``@task(has_return_value=True)``.
    Without ``has_return_value`` a task that returns anything but ``None``
    fails with :class:`UnexpectedReturnValueError`; with it, return values are
    collected on the pool (``pool.return_values()``) or on the enclosing
    :func:`task_group`.
    """
    if fn is None:
        return functools.partial(task, has_return_value=has_return_value)
    if not callable(fn):
        raise TypeError(f"@pylateral.task needs a callable, got {type(fn).__name__}")
    wrapper = _lateral.Task(fn, bool(has_return_value))
    functools.update_wrapper(wrapper, fn)
    return wrapper
