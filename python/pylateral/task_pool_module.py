"""The published pylateral's module path of the pool:
``pylateral.task_pool_module`` (``task_pool``, ``join``, ``TaskPool``,
``TaskPoolAlreadyAllocated``, ``get_current_task_pool``)."""
from .exceptions import TaskPoolAlreadyAllocated
from .pool import TaskPool, get_current_task_pool, join, task_pool

__all__ = ["TaskPool", "TaskPoolAlreadyAllocated", "get_current_task_pool", "join",
           "task_pool"]
