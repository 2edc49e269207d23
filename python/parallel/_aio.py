"""Awaiting work that runs on threads or processes, from asyncio or trio.

The work tells when it ends through a done callback, called in whichever
thread finishes it; the callback hands a wake-up to the event loop
(``loop.call_soon_threadsafe``, or trio's token), so the loop sleeps until
then: no polling, and no thread of another pool parked on a blocking wait.
anyio runs on one of the two, and so works too.  Shared by parallel's
``AsyncExecution`` and strand's handles.
"""
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any, Literal

#: ``subscribe(wake)``: have ``wake()`` called once, from any thread, when the work is done.
Subscribe = Callable[[Callable[[], None]], object]


async def wait_done(subscribe: Subscribe, on_cancel: Callable[[], object],
                    deadline: float | None = None) -> bool:
    """Suspend the calling task until the work is done.

    ``subscribe(wake)`` must call ``wake()`` once, from any thread, when the
    work is done (at once if it is).  ``deadline``: a ``time.monotonic()``
    time; returns False when it passes first, else True.  When the awaiting
    task is cancelled, ``on_cancel()`` is called and the cancellation goes
    on.
    """
    library = _running_library()
    if library == "asyncio":
        return await _wait_asyncio(subscribe, on_cancel, deadline)
    return await _wait_trio(library, subscribe, on_cancel, deadline)


async def sleep(seconds: float) -> None:
    """``asyncio.sleep`` or ``trio.sleep``, whichever runs this task."""
    library = _running_library()
    if library == "asyncio":
        await asyncio.sleep(seconds)
    else:
        await library.sleep(seconds)


def _running_library() -> Literal["asyncio"] | ModuleType:
    """'asyncio', or the trio module when trio runs the calling task."""
    try:
        asyncio.get_running_loop()
        return "asyncio"
    except RuntimeError:
        pass
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_trio_token()
            return trio
        except RuntimeError:
            pass
    raise RuntimeError("awaiting needs a running asyncio or trio event loop "
                       "(anyio runs on either)")


async def _wait_asyncio(subscribe: Subscribe, on_cancel: Callable[[], object],
                        deadline: float | None) -> bool:
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        try:
            loop.call_soon_threadsafe(_resolve, woken)
        except RuntimeError:  # the loop was closed meanwhile: nobody waits
            pass

    subscribe(wake)
    try:
        if deadline is None:
            await woken
            return True
        # asyncio.wait never cancels ``woken`` when its timeout runs out.
        wait_some: Callable[[float | None], Awaitable[object]] = \
            lambda left: asyncio.wait((woken,), timeout=left)
        return await _until(woken.done, wait_some, deadline)
    except asyncio.CancelledError:
        on_cancel()
        raise


def _resolve(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


async def _wait_trio(trio: Any, subscribe: Subscribe, on_cancel: Callable[[], object],
                     deadline: float | None) -> bool:
    token = trio.lowlevel.current_trio_token()
    woken = trio.Event()

    def wake() -> None:
        try:
            token.run_sync_soon(woken.set)
        except trio.RunFinishedError:
            pass

    async def wait_some(left: float | None) -> None:
        with trio.move_on_after(float("inf") if left is None else left):
            await woken.wait()

    subscribe(wake)
    try:
        return await _until(woken.is_set, wait_some, deadline)
    except trio.Cancelled:
        on_cancel()
        raise


async def _until(woken: Callable[[], bool],
                 wait_some: Callable[[float | None], Awaitable[object]],
                 deadline: float | None) -> bool:
    """True once ``woken()``, False when the deadline passes first.  Loops
    because a timer may fire a hair before the deadline by our clock."""
    while not woken():
        left: float | None = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return False
        await wait_some(left)
    return True
