"""Progress reports and logging, shared by pylateral, parallel and strand.

Every ``progress=`` option of the three packages (``task_pool``,
``parallel.map`` and friends, ``StoreTaskReader``) takes the same values:

``None`` or ``False`` (the default)
    Nothing is drawn.
``True``
    A progress bar on stderr when stderr is a terminal -- tqdm's when tqdm is
    installed (``pip install lateral[progress]``), else a one-line indicator
    redrawn in place -- and nothing when it is not (a pipe, a log file).
``"always"``
    That bar even when stderr is not a terminal.
``"lines"``
    Plain lines on stderr, no carriage returns: one every second at most, or
    whenever another tenth of the total is done, and the last count at the
    end.  For logs.
a callable ``progress(done, total)``
    Called with the count of finished items and the total (``None`` when
    there is none, as for a strand worker), for a custom display.

Whatever the value, one daemon thread per call -- named
``lateral-progress`` -- samples the counts every :data:`INTERVAL` seconds
and draws, or calls the callable, only when they changed, then a last time
when the work ends (before ``map`` returns, before the ``with task_pool()``
block exits).  So the callable is always called from that thread, never
from two threads at once, never while lateral holds a lock of its own, and
at most about ten times a second however small the tasks: the tasks
themselves never pay for progress.  If it raises, progress stops and the
exception is raised when the work ends without an error of its own (else it
is logged, at WARNING).

Logging: each package logs on its own logger (``pylateral``, ``parallel``,
``strand``) given a ``logging.NullHandler`` here, so that nothing is printed
unless the application configures logging.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any, Callable, Optional, Protocol, TextIO, Tuple, Union, cast

#: ``progress(done, total)``: ``total`` is None when the work has no end.
ProgressCallback = Callable[[int, Optional[int]], object]
#: The values every ``progress=`` option accepts (see the module's doc).
ProgressOption = Union[None, bool, str, ProgressCallback]
#: What the monitor thread samples: ``() -> (done, total)``.
Counts = Callable[[], Tuple[int, Optional[int]]]



class Sink(Protocol):
    """Where a Monitor shows the counts: a bar, lines or the user's callable."""

    def update(self, done: int, total: Optional[int]) -> object:
        """Show the counts."""

    def close(self) -> None:
        """The work ended: finish the display."""


#: ``progress="always"``: draw the bar even when stderr is not a terminal.
ALWAYS = "always"
#: ``progress="lines"``: plain lines, for logs.
LINES = "lines"
#: Seconds between two samples of the counts (at most ~10 draws a second).
INTERVAL = 0.1
#: ``"lines"``: the most seconds between two lines ...
LINE_SECONDS = 1.0
#: ... and the share of the total (in percent) that prints one earlier.
LINE_PERCENT = 10


def package_logger(name: str) -> logging.Logger:
    """The logger ``name`` of a lateral package, with a ``NullHandler``: a
    library prints nothing unless the application configures logging."""
    logger = logging.getLogger(name)
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    return logger


def error_text(error: BaseException) -> str:
    """``Type: message`` of ``error``, for a log record: text, so that a
    record a handler keeps does not keep the error's frames, and never an
    exception of its own (an error whose ``__str__`` raises)."""
    try:
        return f"{type(error).__name__}: {error}"
    except Exception:
        return f"{type(error).__name__} (unprintable)"


def check(option: object, owner: str) -> ProgressOption:
    """``option`` if it is a valid ``progress=`` value, else TypeError (a
    wrong type) or ValueError (an unknown string) naming ``owner``."""
    if option is None or isinstance(option, bool):
        return option
    if isinstance(option, str) and option in (ALWAYS, LINES):
        return option
    problem = (f"{owner}: progress must be True, False, None, {ALWAYS!r}, {LINES!r} "
               f"or a callable(done, total), got {option!r}")
    if isinstance(option, str):
        raise ValueError(problem)
    if not callable(option):
        raise TypeError(problem)
    return option


def start(option: ProgressOption, counts: Counts, label: str,
          logger: logging.Logger) -> Optional["Monitor"]:
    """Start reporting the progress ``counts()`` gives, as ``option`` (a
    checked value, see :func:`check`) asks; None when nothing is to be shown.
    ``label`` names the work on the bar; ``logger`` gets a callable's error
    that cannot be raised."""
    sink = _sink(option, label)
    return None if sink is None else Monitor(sink, counts, logger)


class Monitor:
    """The ``lateral-progress`` thread of one call: samples ``counts()``
    every :data:`INTERVAL` seconds and shows what changed."""

    def __init__(self, sink: Sink, counts: Counts, logger: logging.Logger) -> None:
        self._sink = sink
        self._counts = counts
        self._logger = logger
        self._shown: Optional[Tuple[int, Optional[int]]] = None
        self._error: Optional[BaseException] = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lateral-progress",
                                        daemon=True)
        self._thread.start()

    def stop_soon(self) -> None:
        """Show the last counts and end; safe from any thread (a done callback)."""
        self._stopping.set()

    def finish(self, raise_error: bool = True) -> None:
        """Show the last counts and wait for the thread to end.  A callable
        that raised: its exception is raised if ``raise_error``, else logged.
        Calling it again does nothing."""
        self._stopping.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        error, self._error = self._error, None
        if error is None:
            return
        if raise_error:
            raise error
        self._logger.warning("the progress callback raised %s: %s", type(error).__name__,
                             error, exc_info=error)

    def _run(self) -> None:
        try:
            while not self._stopping.wait(INTERVAL):
                self._show()
            self._show()
        finally:
            self._guarded(self._sink.close)

    def _show(self) -> None:
        if self._error is not None:
            return
        done, total = self._counts()
        if total is not None:
            total = max(total, done)  # two counters read one after the other
        if (done, total) != self._shown:
            self._shown = (done, total)
            self._guarded(self._sink.update, done, total)

    def _guarded(self, call: Callable[..., object], *args: Any) -> None:
        if self._error is not None:
            return
        try:
            call(*args)
        except Exception as exc:  # a user's callable: reported when the work ends
            self._error = exc


def _sink(option: ProgressOption, label: str) -> Optional[Sink]:
    stream = sys.stderr  # looked up now: tests and applications replace it
    if option is None or option is False:
        return None
    if callable(option):
        return _Callback(option)
    if stream is None:  # pythonw: no stderr at all
        return None
    if option == LINES:
        return _Lines(label, stream)
    if option is True and not is_terminal(stream):
        return None
    tqdm = _tqdm()
    return _InPlace(label, stream) if tqdm is None else _Tqdm(tqdm, label, stream)


def is_terminal(stream: Optional[TextIO]) -> bool:
    """Whether ``stream`` is an open terminal (``progress=True`` draws only then)."""
    try:
        return stream.isatty()  # type: ignore[union-attr]  # None: AttributeError
    except (AttributeError, ValueError):  # None, no isatty(), or a closed stream
        return False


def _tqdm() -> Any:
    """tqdm's bar class when tqdm is installed, else None."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def describe(done: int, total: Optional[int]) -> str:
    """``done/total (p%)``, or ``done done`` without a total."""
    if total is None:
        return f"{done} done"
    if total == 0:
        return f"{done}/{total}"
    return f"{done}/{total} ({done * 100 // total}%)"


class _Callback:
    def __init__(self, fn: ProgressCallback) -> None:
        self.update = fn

    def close(self) -> None:
        pass


class _InPlace:
    """The built-in bar: one line on a terminal, redrawn with a ``\\r``."""

    def __init__(self, label: str, stream: TextIO) -> None:
        self._label = label
        self._stream = stream
        self._width = 0

    def update(self, done: int, total: Optional[int]) -> None:
        text = f"{self._label}: {describe(done, total)}"
        # Padded: a shorter line must cover the end of the longer one.
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)

    def close(self) -> None:
        if self._width:
            self._stream.write("\n")
            self._stream.flush()


class _Lines:
    """``"lines"``: a plain line per second or per tenth of the total."""

    def __init__(self, label: str, stream: TextIO) -> None:
        self._label = label
        self._stream = stream
        self._written: Optional[Tuple[int, Optional[int]]] = None
        self._last: Optional[Tuple[int, Optional[int]]] = None
        self._at = -LINE_SECONDS
        self._step = -1

    def update(self, done: int, total: Optional[int]) -> None:
        self._last = (done, total)
        step = done * 100 // (total * LINE_PERCENT) if total else -1
        if step != self._step or time.monotonic() - self._at >= LINE_SECONDS:
            self._step = step
            self._write()

    def close(self) -> None:
        if self._last != self._written:
            self._write()

    def _write(self) -> None:
        self._at = time.monotonic()
        self._written = self._last
        last = cast(Tuple[int, Optional[int]], self._last)  # set by update() first
        self._stream.write(f"{self._label}: {describe(*last)}\n")
        self._stream.flush()


class _Tqdm:
    """The bar drawn by tqdm, made at the first update."""

    def __init__(self, tqdm: Any, label: str, stream: TextIO) -> None:
        # initial=: the rate counts from the first sample, not from zero.
        self._make: Callable[[int, Optional[int]], Any] = lambda done, total: tqdm(initial=done, total=total, desc=label,
                                              file=stream, mininterval=0,
                                              dynamic_ncols=True)
        self._bar: Any = None

    def update(self, done: int, total: Optional[int]) -> None:
        if self._bar is None:
            self._bar = self._make(done, total)
            return
        bar = self._bar
        grown = bar.total != total
        bar.total = total
        if done != bar.n:
            bar.update(done - bar.n)  # draws (mininterval=0: we throttle)
        elif grown:
            bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
