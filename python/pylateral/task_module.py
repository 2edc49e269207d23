"""The published pylateral's module path of ``@task``:
``pylateral.task_module`` (``task``, ``UnexpectedReturnValue``)."""
from .exceptions import UnexpectedReturnValue, UnexpectedReturnValueError
from .task import task

__all__ = ["UnexpectedReturnValue", "UnexpectedReturnValueError", "task"]
