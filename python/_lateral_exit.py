"""The interpreter's exit waits for work started fire-and-forget, as it does
for non-daemon threads and ThreadPoolExecutor (shared by parallel and
strand).

The wait runs in ``threading._shutdown``, the hook ThreadPoolExecutor uses:
before threads are joined and before the ``atexit`` handlers, among them
the core's, which stops every pool.  Ctrl-C stops the wait, and a program
that ends on an uncaught Ctrl-C does not wait at all: the user asked it to
stop.
"""
import os
import sys
import threading


def wait_at_exit(unfinished, wait):
    """At exit, call ``wait(item)`` for every item of the WeakSet
    ``unfinished`` (an item leaves the set once done and unreferenced),
    items added meanwhile included: work that the work starts."""

    def wait_for_all():
        if _ended_by_ctrl_c():
            return
        # list() rather than len(): a signal handler that raised inside the
        # set's own weakref callback can leave a dead entry counted.
        while True:
            items = list(unfinished)
            if not items:
                return
            for item in items:
                wait(item)
                unfinished.discard(item)

    try:
        threading._register_atexit(wait_for_all)
    except RuntimeError:  # imported while the interpreter shuts down: too late to wait
        pass
    if hasattr(os, "register_at_fork"):
        # A forked child has none of the parent's threads or processes: the
        # parent's work never ends there.
        os.register_at_fork(after_in_child=unfinished.clear)


def _ended_by_ctrl_c():
    """True when the program is ending on an uncaught KeyboardInterrupt
    (the interpreter printed it, which records it as the last exception)."""
    last = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    return isinstance(last, KeyboardInterrupt)
