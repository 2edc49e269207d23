"""``strand.taskrunning.multi_dispatch``: :class:`strand.TaskDispatcher`."""
from ..task_dispatcher import TaskDispatcher

__all__ = ["TaskDispatcher"]
