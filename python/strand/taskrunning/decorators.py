"""``strand.taskrunning.decorators``: :func:`strand.as_task`."""
from ..decorator import as_task

__all__ = ["as_task"]
