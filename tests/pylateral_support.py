"""Shared helpers and fixtures for the pylateral tests.

``LocalSite`` is a stdlib HTTP server on 127.0.0.1 that stands in for the web
sites of the documents' examples (the tests have no network).  The fixtures
keep every test independent of the caller's ``PYLATERAL_*`` environment and
check that no test leaves a pool or a worker thread behind.
"""
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

import _lateral
import pylateral
from common_support import PATIENCE, Counter, LoopbackSite, wait_until  # noqa: F401  (re-exported)


class LocalSite(LoopbackSite):
    """A threaded HTTP server serving fixed responses, one thread per request.

    ``routes`` maps a request path (query string included) to a body: bytes
    are served as text, anything else as JSON.  Unknown paths get 404.
    ``on_request(path)``, if set, runs in the request's thread before the
    response is written (an exception there turns the response into a 500).
    """

    thread_name = "local-site"

    def __init__(self, routes=None):
        super().__init__()
        self.routes = dict(routes or {})
        self.on_request = None

    def request_count(self, path):
        """How many requests asked for ``path``."""
        with self._lock:
            return self.requests.count(path)

    def respond(self, handler):
        hook = self.on_request
        try:
            if hook is not None:
                hook(handler.path)
        except Exception as exc:  # the client sees the failure as an HTTP 500
            return self._send(handler, 500, b"", reason=f"on_request failed: {exc!r}")
        if handler.path not in self.routes:
            return self._send(handler, 404, b"not found")
        body = self.routes[handler.path]
        if isinstance(body, bytes):
            return self._send(handler, 200, body)
        return self._send(handler, 200, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _send(handler, status, body, content_type="text/plain", reason=None):
        handler.send_response(status, reason)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def get_json(url):
    """``requests.get(url).json()`` with the standard library."""
    with urllib.request.urlopen(url, timeout=PATIENCE) as response:
        return json.loads(response.read())


def pylateral_threads():
    """Names of the live threads that belong to a pylateral pool."""
    return [t.name for t in threading.enumerate() if t.name.startswith("pylateral-")]


def child_env():
    """The current environment without any PYLATERAL_* setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYLATERAL_")}


def run_child(code, timeout=60):
    """Run ``code`` in a fresh interpreter; a hang fails the test at ``timeout``."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=timeout, env=child_env())


@pytest.fixture
def local_site():
    """A running ``LocalSite`` with no routes yet; stopped after the test."""
    site = LocalSite().start()
    yield site
    site.stop()


@pytest.fixture(autouse=True)
def isolated_pylateral(monkeypatch):
    """Run each test without PYLATERAL_* variables, and make sure it leaves
    no open pool and no worker thread behind (closing them if it did, so that
    one failure does not cascade into the following tests)."""
    for name in ("PYLATERAL_WORKERS", "PYLATERAL_ENABLED", "PYLATERAL_TIMEOUT",
                 "PYLATERAL_BLOCK_WHEN_SATURATED"):
        monkeypatch.delenv(name, raising=False)
    yield
    leftover = _lateral.get_current_pool()
    if leftover is not None:
        _lateral.set_current_pool(None)
        leftover.close(cancel=True)
        pytest.fail("the test left a pylateral task pool open")
    assert pylateral_threads() == [], "the test left pylateral threads running"


def task_source_line(fn, text):
    """The line number of the first line of task ``fn`` containing ``text``."""
    code = pylateral_unwrap(fn).__code__
    with open(code.co_filename) as source:
        lines = source.read().splitlines()
    for number in range(code.co_firstlineno, len(lines) + 1):
        if text in lines[number - 1]:
            return number
    raise AssertionError(f"{text!r} not found in {fn.__name__}")


def pylateral_unwrap(fn):
    """The plain function under a ``@pylateral.task``."""
    return getattr(fn, "__wrapped__", fn)


__all__ = [
    "Counter", "LocalSite", "PATIENCE", "child_env", "get_json",
    "isolated_pylateral", "local_site", "pylateral_threads",
    "pylateral_unwrap", "run_child", "task_source_line", "wait_until",
]


def calls_done_while_workers_are_busy(workers, calls, **pool_options):
    """How many of ``calls`` task calls the opening thread completed while
    every one of the ``workers`` was held busy (then they are let go)."""
    gate = threading.Event()
    started, returned = Counter(), Counter()
    observed = []

    @pylateral.task
    def held():
        started.add()
        gate.wait(PATIENCE)

    def watch():
        wait_until(lambda: started.value == workers)
        time.sleep(0.3)  # room for a call that should block to return anyway
        observed.append(returned.value)
        gate.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with pylateral.task_pool(max_workers=workers, **pool_options):
            for _ in range(calls):
                held()
                returned.add()
    finally:
        gate.set()
        watcher.join()
    assert started.value == calls
    return observed[0]
