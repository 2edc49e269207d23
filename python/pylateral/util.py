"""The published pylateral's ``pylateral.util`` path of ``PoolTimeoutError``
(the one name of that module meant for users)."""
from .exceptions import PoolTimeoutError

__all__ = ["PoolTimeoutError"]
