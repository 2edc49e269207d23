"""``strand.taskrunning.store_reader``: :class:`strand.StoreTaskReader`."""
from ..reader import StoreTaskReader

__all__ = ["StoreTaskReader"]
