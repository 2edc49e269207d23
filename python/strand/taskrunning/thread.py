"""``strand.taskrunning.thread``: :class:`strand.ThreadTaskrunner`."""
from ..threads import ThreadTaskrunner

__all__ = ["ThreadTaskrunner"]
