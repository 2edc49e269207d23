"""The taskrunner targets' names, at the published strand's path
(``strand.constants``): what :func:`strand.as_task` and
:class:`strand.TaskDispatcher` accept as ``target``."""

THREAD = "thread"
PROCESS = "process"
SYNC = "sync"
STORE = "store"
COROUTINE = "coroutine"

__all__ = ["COROUTINE", "PROCESS", "STORE", "SYNC", "THREAD"]
