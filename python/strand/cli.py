"""The ``strand`` command (also ``python -m strand``): a worker that runs the
tasks of a store, and what an operator needs around it.

    strand worker STORE --import MODULE [--concurrency N] [--secret-env NAME]
                  [--progress [auto|always|lines|never]] ...
    strand info STORE [--errors N]
    strand retry STORE (TASK_ID ... | --all)
    strand purge STORE [--status complete|error ...] [--older-than SECONDS]

STORE is what ``strand.open_store`` takes: an SQLite file path, or a
``redis://``/``rediss://``/``unix://`` URL, with ``?namespace=NAME`` for a
namespace other than ``strand``.  See docs/strand.md.
"""
import argparse
import importlib
import inspect
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from types import FrameType
from typing import Any, TypeAlias

import _lateral_progress

from .base import Taskrunner, unwrap
from .handles import COMPLETE, ERROR
from .reader import StoreTaskReader
from .registry import TaskRegistry, registry
from .stores import open_store, task_queue
from .stores._records import TaskQueue

log = logging.getLogger("strand")

#: Exit status when the command could not do its work (a usage error is 2).
FAILED = 1

# What signal.signal returns: the handler it replaced.
_SignalHandler: TypeAlias = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def main(argv: list[str] | None = None) -> int:
    """Run the ``strand`` command with ``argv`` (default: ``sys.argv[1:]``);
    returns the exit status."""
    parser = _parser()
    options = parser.parse_args(argv)
    if options.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        status: int = options.run(options)
        return status
    except _Failure as exc:
        print(f"strand {options.command}: {exc}", file=sys.stderr)
        return FAILED


class _Failure(Exception):
    """A command could not do its work; the message says why."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="strand", description="Run and manage the tasks "
                                     "of a strand store (an SQLite file or a redis:// URL).")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    worker = commands.add_parser("worker", help="run the tasks of a store until SIGTERM/SIGINT")
    _store_argument(worker)
    worker.add_argument("--import", dest="modules", action="append", default=[],
                        metavar="MODULE", help="import MODULE: its functions are found by name "
                        "(repeat for several)")
    worker.add_argument("--concurrency", type=_positive_int, default=1, metavar="N",
                        help="tasks run at once (default 1)")
    worker.add_argument("--lease", type=_positive_float, default=30.0, metavar="SECONDS",
                        help="seconds a claim lasts without renewal (default 30)")
    worker.add_argument("--secret-env", metavar="NAME", help="the environment variable "
                        "holding the secret that signs pickled payloads")
    worker.add_argument("--require-signature", action="store_true",
                        help="refuse unsigned records (needs --secret-env)")
    worker.add_argument("--name", help="the reader's name in the store (default host:pid:id)")
    worker.add_argument("--log-level", default="INFO", type=str.upper,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="of the strand logger, on stderr (default INFO: a line per task)")
    worker.add_argument("--progress", nargs="?", const="auto", default="never",
                        choices=sorted(_PROGRESS), help="a running count of the tasks done, "
                        "on stderr: 'auto' (the default of a bare --progress) when stderr is "
                        "a terminal, 'always', 'lines' (plain lines, for logs) or 'never' "
                        "(the default); best with --log-level WARNING")
    worker.set_defaults(run=_worker)

    info = commands.add_parser("info", help="counts by status and the last errors")
    _store_argument(info)
    info.add_argument("--errors", type=int, default=5, metavar="N",
                      help="how many of the last errors to show (default 5)")
    info.set_defaults(run=_info)

    retry = commands.add_parser("retry", help="queue failed tasks again")
    _store_argument(retry)
    retry.add_argument("task_ids", nargs="*", metavar="TASK_ID")
    retry.add_argument("--all", action="store_true", help="every failed task")
    retry.set_defaults(run=_retry)

    purge = commands.add_parser("purge", help="delete finished records")
    _store_argument(purge)
    purge.add_argument("--status", action="append", choices=[COMPLETE, ERROR],
                       help="which records (repeatable; default both)")
    purge.add_argument("--older-than", type=_positive_float, metavar="SECONDS",
                       help="only those that ended at least SECONDS ago")
    purge.set_defaults(run=_purge)
    return parser


def _store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", metavar="STORE", help="an SQLite file path, or a redis:// "
                        "URL (?namespace=NAME for another namespace than 'strand')")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _open(location: str) -> tuple[MutableMapping[str, Any], TaskQueue]:
    try:
        store = open_store(location)
    except Exception as exc:
        raise _Failure(f"cannot open the store {location!r}: {exc}") from None
    return store, task_queue(store)


# --- worker ------------------------------------------------------------------------

def _worker(options: argparse.Namespace) -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    log.setLevel(options.log_level)
    secret = _secret(options.secret_env)
    if options.require_signature and secret is None:
        raise _Failure("--require-signature needs --secret-env")
    functions = _functions(options.modules)
    store, _ = _open(options.store)
    reader = StoreTaskReader(store, functions=functions, secret=secret,
                             require_signature=options.require_signature, lease=options.lease,
                             concurrency=options.concurrency, name=options.name,
                             progress=_PROGRESS[options.progress])
    stopping = threading.Event()
    signals = _on_signals(stopping)
    try:
        reader.listen()
        log.warning("strand: worker %s on %r: concurrency %d, %d functions known; "
                    "SIGTERM or SIGINT stops it", reader.name, store, options.concurrency,
                    len([name for name in functions.names() if ":" in name]))
        while not stopping.wait(3600):
            pass
        stopping.clear()
        ended = reader.stop(timeout=0)  # no task is claimed from now on
        log.warning("strand: worker %s stopping: no new task is claimed; waiting for %d "
                    "running (a second signal stops at once)", reader.name,
                    len(reader.running_tasks()))
        while not ended and not reader.stop(timeout=0.2):
            if stopping.is_set():
                log.warning("strand: worker %s stopped with tasks running; they run again "
                            "after their lease", reader.name)
                return FAILED
        log.warning("strand: worker %s stopped (%d complete, %d failed)", reader.name,
                    reader.completed, reader.failed)
        return 0
    finally:
        for signum, handler in signals.items():
            signal.signal(signum, handler)


#: --progress's values, as StoreTaskReader's progress=.
_PROGRESS: dict[str, _lateral_progress.ProgressOption] = {"auto": True, "never": False, _lateral_progress.ALWAYS: _lateral_progress.ALWAYS,
             _lateral_progress.LINES: _lateral_progress.LINES}


def _on_signals(event: threading.Event) -> dict[signal.Signals, _SignalHandler]:
    previous: dict[signal.Signals, _SignalHandler] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, lambda *_: event.set())
    return previous


def _secret(name: str | None) -> str | None:
    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise _Failure(f"--secret-env {name}: the environment variable {name} is not set")
    return value


def _functions(modules: list[str]) -> TaskRegistry:
    """strand.registry plus every function defined in ``modules`` (and the
    functions of the Taskrunners that ``@as_task`` left there)."""
    functions = TaskRegistry(registry)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as ``python -m`` would: the worker's folder
    for name in modules:
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            raise _Failure(f"--import {name}: {type(exc).__name__}: {exc}") from None
        for value in list(vars(module).values()):
            func = unwrap(value) if isinstance(value, Taskrunner) else value
            if inspect.isfunction(func) and func.__module__ == module.__name__:
                functions.register(func)
    return functions


# --- info, retry, purge ------------------------------------------------------------

def _info(options: argparse.Namespace) -> int:
    store, queue = _open(options.store)
    counts, errors = _admin(queue, "counts")(), _admin(queue, "errors")(options.errors)
    print(f"{store!r}")
    total = sum(counts.values())
    for status in ("new", "running", "complete", "error", *sorted(set(counts) - {
            "new", "running", "complete", "error"})):
        print(f"  {status:<10} {counts.get(status, 0):>8}")
    print(f"  {'total':<10} {total:>8}")
    if errors:
        print(f"last {len(errors)} errors:")
    for task_id, record in errors:
        when = record.get("finished")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when)) if when else "?"
        print(f"  {task_id}  {record.get('name', '?')}  {stamp}  "
              f"{record.get('error_type')}: {_one_line(record.get('error_message'))}")
    return 0


def _retry(options: argparse.Namespace) -> int:
    if not options.task_ids and not options.all:
        raise _Failure("name the tasks to retry, or pass --all")
    _, queue = _open(options.store)
    ids = options.task_ids or [task_id for task_id, _ in _admin(queue, "errors")(10 ** 9)]
    requeued = [task_id for task_id in ids if _admin(queue, "requeue")(task_id)]
    for task_id in sorted(set(options.task_ids) - set(requeued)):
        print(f"{task_id}: not a failed task; left as it is", file=sys.stderr)
    print(f"queued again: {len(requeued)}")
    return 0 if len(requeued) == len(ids) else FAILED


def _purge(options: argparse.Namespace) -> int:
    _, queue = _open(options.store)
    before = None if options.older_than is None else time.time() - options.older_than
    deleted = _admin(queue, "purge")(tuple(options.status or (COMPLETE, ERROR)), before)
    print(f"deleted: {deleted}")
    return 0


def _admin(queue: TaskQueue, name: str) -> Callable[..., Any]:
    operation: Callable[..., Any] | None = getattr(queue, name, None)
    if operation is None:
        raise _Failure(f"{queue!r} does not support {name}")

    def run(*args: Any) -> Any:
        try:
            return operation(*args)
        except Exception as exc:
            raise _Failure(f"{type(exc).__name__}: {exc}") from None
    return run


def _one_line(text: object) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= 120 else text[:117] + "..."
