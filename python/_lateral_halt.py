"""Safe points for lateral's halts: which code is the user's, and the
sys.monitoring bookkeeping that watches it while a halt is pending.

The C core (src/_lateral/halt.c) stops a halted task only at a safe point:
its next call into lateral, or the next line of *user* code.  Library code
-- the standard library, frozen modules, installed packages and lateral
itself -- is never a safe point, because an exception raised there can land
between a lock's ``acquire()`` and its ``try:`` and hang the program.

On Python 3.12 and later the line watch is PEP 669 ``sys.monitoring``: LINE
events on the user code objects found on the halted workers' stacks, and
PY_START / PY_RESUME for user functions entered later.  Everything is
switched off again when the last halt ends (:func:`disarm`).  Python 3.10
and 3.11 use a trace function on the halted worker's thread instead, set by
the core; there only :func:`is_library_file` is used.
"""
import functools
import os
import site
import sys
import sysconfig
import threading
import typing
import warnings
from types import CodeType, FrameType

import _lateral

#: Name under which lateral holds a sys.monitoring tool id during a halt.
TOOL_NAME = "lateral"

#: Tool ids tried in turn: the ones no convention reserves come first
#: (0 debugger, 1 coverage, 2 profiler, 5 optimizer).
_TOOL_IDS = (4, 3, 5, 2, 1, 0)
_PACKAGE_DIRS = ("pylateral", "parallel", "strand")


def _library_roots() -> tuple[str, ...]:
    """Directories whose files are library code, each ending in a separator."""
    roots = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if paths.get(key):
            roots.add(paths[key])
    roots.add(os.path.dirname(os.__file__))
    try:
        roots.update(site.getsitepackages())
    except AttributeError:  # some virtualenv builds lack it
        pass
    roots.add(site.getusersitepackages())
    here = os.path.dirname(os.path.abspath(_lateral.__file__))
    roots.update(os.path.join(here, name) for name in _PACKAGE_DIRS)
    normalized = set()
    for root in roots:
        for form in (os.path.abspath(root), os.path.realpath(root)):
            normalized.add(os.path.join(os.path.normcase(form), ""))
    return tuple(sorted(normalized))


_ROOTS = _library_roots()
_THIS_FILE = os.path.normcase(os.path.realpath(__file__))


@functools.lru_cache(maxsize=None)
def is_library_file(filename: str) -> bool:
    """True if code from ``filename`` (a ``co_filename``) is library code.

    ``<frozen ...>`` modules are library code; other ``<...>`` names
    (``<string>`` of ``python -c`` or ``exec``, ``<stdin>``) are the user's.
    """
    if filename.startswith("<"):
        return filename.startswith("<frozen")
    forms = {os.path.normcase(os.path.abspath(filename)),
             os.path.normcase(os.path.realpath(filename))}
    for path in forms:
        if path == _THIS_FILE or path.startswith(_ROOTS):
            return True
        parts = path.split(os.sep)
        if "site-packages" in parts or "dist-packages" in parts:
            return True
    return False


_tool: int | None = None
_armed_codes: dict[CodeType, None] = {}  # the ones given local LINE events
_warned = False
# arm() and disarm() may run in two threads at once (two pools halting).
_lock = threading.Lock()


def _take_tool_id() -> int | None:
    mon = sys.monitoring  # type: ignore[attr-defined, unused-ignore]  # Python 3.12+
    for tool in _TOOL_IDS:
        if mon.get_tool(tool) is None:
            mon.use_tool_id(tool, TOOL_NAME)
            return tool
    return None


def _start_watching() -> bool:
    global _tool, _warned
    _tool = _take_tool_id()
    if _tool is None:
        if not _warned:
            _warned = True
            warnings.warn("every sys.monitoring tool id is in use: halted lateral tasks "
                          "stop only at their next call into lateral", RuntimeWarning)
        return False
    mon = sys.monitoring  # type: ignore[attr-defined, unused-ignore]
    events = mon.events
    for event in (events.LINE, events.PY_START, events.PY_RESUME):
        mon.register_callback(_tool, event, _lateral._halt_event)
    mon.set_events(_tool, events.PY_START | events.PY_RESUME)
    return True


def arm(frame: FrameType | None) -> None:
    """Watch the user code on the stack that ``frame`` tops (a halted
    worker's) for its next line, and every user function entered from now
    on.  Python 3.12 and later.

    The main thread arms when Ctrl-C cancels a pool, and a second Ctrl-C may
    land right there: ``_lock`` is taken in C (locked_call), for a with
    block that a signal handler raises into as it begins (3.14) leaves its
    lock held, and every later halt would wait for it."""
    _lateral.locked_call(_lock, _arm, frame)


def _arm(frame: FrameType | None) -> None:
    """Contract: _lock held."""
    if _tool is None and not _start_watching():
        return
    tool = typing.cast(int, _tool)  # set by _start_watching()
    mon = sys.monitoring  # type: ignore[attr-defined, unused-ignore]
    while frame is not None:
        code = frame.f_code
        if code not in _armed_codes and not is_library_file(code.co_filename):
            mon.set_local_events(tool, code, mon.events.LINE)
            _armed_codes[code] = None
        frame = frame.f_back


def disarm() -> None:
    """Switch every event off and give the tool id back (the last halt
    ended).  ``_lock`` is taken in C, as in :func:`arm`."""
    _lateral.locked_call(_lock, _disarm)


def _disarm() -> None:
    """Contract: _lock held."""
    global _tool
    if _tool is None:
        return
    mon = sys.monitoring  # type: ignore[attr-defined, unused-ignore]
    for code in _armed_codes:
        mon.set_local_events(_tool, code, 0)
    _armed_codes.clear()
    mon.set_events(_tool, 0)
    events = mon.events
    for event in (events.LINE, events.PY_START, events.PY_RESUME):
        mon.register_callback(_tool, event, None)
    mon.free_tool_id(_tool)
    _tool = None
