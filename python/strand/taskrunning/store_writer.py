"""``strand.taskrunning.store_writer``: :class:`strand.StoreTaskWriter`."""
from ..writer import StoreTaskWriter

__all__ = ["StoreTaskWriter"]
