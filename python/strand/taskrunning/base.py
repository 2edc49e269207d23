"""``strand.taskrunning.base``: :class:`strand.Taskrunner`."""
from ..base import Taskrunner

__all__ = ["Taskrunner"]
