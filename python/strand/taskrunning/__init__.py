"""``strand.taskrunning``: the published strand's package of taskrunners.
Its modules hold the same objects as ``strand`` (one implementation each):

base (Taskrunner), thread (ThreadTaskrunner), multiprocess
(MultiprocessTaskrunner), coroutine (CoroutineTaskrunner), store_writer
(StoreTaskWriter), store_reader (StoreTaskReader), decorators (as_task),
utils (run_process, resolve_runner_cls, conditional_logger) and
multi_dispatch (TaskDispatcher).
"""
from .base import Taskrunner
from .coroutine import CoroutineTaskrunner
from .decorators import as_task
from .multi_dispatch import TaskDispatcher
from .multiprocess import MultiprocessTaskrunner
from .store_reader import StoreTaskReader
from .store_writer import StoreTaskWriter
from .thread import ThreadTaskrunner
from .utils import run_process

__all__ = ["CoroutineTaskrunner", "MultiprocessTaskrunner", "StoreTaskReader",
           "StoreTaskWriter", "TaskDispatcher", "Taskrunner", "ThreadTaskrunner", "as_task",
           "run_process"]
