"""The published pylateral's module path of task groups:
``pylateral.task_group_module`` (``task_group``, ``get_current_task_group``,
``TaskGroupAlreadyExists``)."""
import _lateral

from .exceptions import TaskGroupAlreadyExists
from .pool import task_group


def get_current_task_group() -> _lateral.TaskGroup | None:
    """The innermost task group open in this thread (inside a task: the group
    the task belongs to), or ``None``."""
    return _lateral.current_group()


__all__ = ["TaskGroupAlreadyExists", "get_current_task_group", "task_group"]
