"""The taskrunner targets' names, at the published strand's path
(``strand.constants``): what :func:`strand.as_task` and
:class:`strand.TaskDispatcher` accept as ``target``."""

#: Target of :class:`strand.ThreadTaskrunner`: a thread of strand's pool.
THREAD = "thread"
#: Target of :class:`strand.MultiprocessTaskrunner`: a new process.
PROCESS = "process"
#: Target of :class:`strand.Taskrunner`: at once, in the calling thread.
SYNC = "sync"
#: Target of :class:`strand.StoreTaskWriter`: a task store, for a reader.
STORE = "store"
#: Target of :class:`strand.CoroutineTaskrunner`: a coroutine on an event loop.
COROUTINE = "coroutine"

__all__ = ["COROUTINE", "PROCESS", "STORE", "SYNC", "THREAD"]
