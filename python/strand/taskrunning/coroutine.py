"""``strand.taskrunning.coroutine``: :class:`strand.CoroutineTaskrunner`."""
from ..coroutine import CoroutineTaskrunner

__all__ = ["CoroutineTaskrunner"]
