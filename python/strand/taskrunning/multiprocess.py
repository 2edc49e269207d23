"""``strand.taskrunning.multiprocess``: :class:`strand.MultiprocessTaskrunner`."""
from ..process import MultiprocessTaskrunner

__all__ = ["MultiprocessTaskrunner"]
