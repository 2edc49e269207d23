"""run_process: a context manager that runs a function in a child process
for the duration of a ``with`` block (a server a test talks to, say), as in
the published strand (``strand.taskrunning.utils.run_process``)."""
import contextlib
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from multiprocessing.process import BaseProcess
from typing import Any, cast

import _lateral

from ._util import func_name, optional_callable, require_callable

#: Seconds ``run_process`` gives a terminated child before it kills it.
TERMINATE_GRACE = 5.0


def conditional_logger(verbose: bool = False,
                       log_func: Callable[..., object] = print) -> Callable[..., object]:
    """``log_func`` when ``verbose``, else a function that does nothing."""
    if verbose:
        return log_func

    def quiet(*args: Any, **kwargs: Any) -> None:
        pass

    return quiet


@contextlib.contextmanager
def run_process(func: Callable[..., object], func_args: Iterable[Any] = (),
                func_kwargs: Mapping[str, Any] | None = None, *,
                process_name: str | None = None,
                is_ready: float | Callable[[], object] | None = None,
                timeout: float | None = 30, force_kill: bool = True, verbose: bool = False,
                process_already_running: Callable[[], object] | None = None,
                ) -> Iterator[BaseProcess | None]:
    """Run ``func(*func_args, **func_kwargs)`` in a new
    ``multiprocessing.Process`` (named ``process_name``, default the
    function's qualified name) and yield the process; on leaving the block,
    stop it if it still runs.

    ``is_ready``: seconds to wait after the start, or a function called
    (every few milliseconds, backing off) until it returns anything but
    ``False``; the block starts then.  Without it the block starts at once.
    ``timeout``: seconds ``is_ready`` may take (None: no limit), else
    TimeoutError (the process is stopped).  A process that exits before it is ready raises
    RuntimeError.  ``force_kill``: on exit, terminate the process (and kill
    it after TERMINATE_GRACE seconds); without it, wait for it to end.
    ``process_already_running``: a function; when it returns True nothing is
    started and the block gets ``None``.  ``verbose``: print what happens.
    Only this process is stopped, never other children of the caller.
    """
    require_callable(func, "run_process's func")
    timeout = _lateral.check_timeout(timeout)
    already_running = optional_callable(process_already_running, "process_already_running")
    log = conditional_logger(verbose)
    if already_running is not None:
        try:
            running = already_running()
        except Exception as exc:
            raise RuntimeError(f"process_already_running failed: {exc!r}") from exc
        if running:
            log(f"{func_name(func)} is already running: nothing started")
            yield None
            return
    name = process_name or getattr(func, "__qualname__", None) or func_name(func)
    process = multiprocessing.Process(target=func, args=tuple(func_args),
                                      kwargs=dict(func_kwargs or {}), name=name)
    log(f"Starting {name} process...")
    process.start()
    try:
        if is_ready:
            _wait_until_ready(process, is_ready, timeout)
        log(f"... {name} process started.")
        yield process
    finally:
        _stop(process, force_kill, log)


def _wait_until_ready(process: BaseProcess, is_ready: float | Callable[[], object],
                      timeout: float | None) -> None:
    started = time.monotonic()
    if isinstance(is_ready, (int, float)) and not isinstance(is_ready, bool):
        is_ready = _seconds_elapsed(started, is_ready)
    # A bool is checked here at run time: neither seconds nor a function.
    is_ready = require_callable(cast(Callable[[], object], is_ready),
                                "is_ready (seconds or a function)")
    interval = 0.005
    while is_ready() is False:
        if not process.is_alive():
            raise RuntimeError(f"process {process.name} exited (code {process.exitcode}) "
                               "before it was ready")
        left = float("inf") if timeout is None else timeout - (time.monotonic() - started)
        if left <= 0:
            raise TimeoutError(f"process {process.name} was not ready within {timeout} "
                               f"seconds ({getattr(is_ready, '__qualname__', is_ready)})")
        time.sleep(min(interval, left))
        interval = min(interval * 2, 0.5)


def _seconds_elapsed(started: float, seconds: float) -> Callable[[], bool]:
    def ready() -> bool:
        return time.monotonic() - started >= seconds

    ready.__qualname__ = f"wait_for_seconds({seconds})"
    return ready


def _stop(process: BaseProcess, force_kill: bool, log: Callable[..., object]) -> None:
    if not process.is_alive():
        process.join()
        return
    if not force_kill:
        process.join()
        return
    log(f"Killing process: {process.name}...")
    process.terminate()
    process.join(TERMINATE_GRACE)
    if process.is_alive():
        process.kill()
        process.join()
    log(f"... {process.name} process killed")


__all__ = ["conditional_logger", "run_process"]
