"""Shared helpers and fixtures for the parallel tests.

``PriceSite`` is a stdlib HTTP server on 127.0.0.1 that stands in for the web
sites and exchanges of the documents' examples (the tests have no network).
The functions at module level are importable by worker processes.
"""
import gc
import json
import os
import re
import threading

import parallel
from common_support import PATIENCE, Counter, LoopbackSite, process_ended, wait_until  # noqa: F401  (re-exported)


#: Prices served by PriceSite: (crypto, exchange) -> price.
PRICES = {
    ("BTC", "bitstamp"): 7800.20,
    ("BTC", "bitfinex"): 7821.89,
    ("BTC", "coinbase"): 7789.32,
    ("ETH", "bitfinex"): 290.15,
    ("XRP", "bitstamp"): 0.45,
}


class PriceSite(LoopbackSite):
    """A threaded HTTP server.

    ``GET /<status>/<site>`` answers ``status`` with the JSON body
    ``{"site": site}`` (no body for 204, as HTTP requires).
    ``GET /price/<crypto>/<exchange>?period=<p>`` answers the price in
    ``PRICES`` as JSON ``{"price": ..., "period": p}``.
    """

    thread_name = "price-site"

    def respond(self, handler):
        price = re.fullmatch(r"/price/(\w+)/(\w+)(?:\?period=(\w+))?", handler.path)
        status = re.fullmatch(r"/(\d{3})/(.+)", handler.path)
        if price:
            crypto, exchange, period = price.groups()
            body = {"price": PRICES[(crypto, exchange)], "period": period or "5m"}
            return _send(handler, 200, json.dumps(body).encode())
        if status:
            code = int(status.group(1))
            body = b"" if code == 204 else json.dumps({"site": status.group(2)}).encode()
            return _send(handler, code, body)
        return _send(handler, 404, b"{}")


def _send(handler, status, body):
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    if status != 204:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def closed_port_url(path="/"):
    """A loopback URL nobody listens on: requests raise ConnectionError."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def parallel_threads():
    """Names of the live threads of parallel's thread pools."""
    return [t.name for t in threading.enumerate() if t.name.startswith("parallel-")]


def add(x, y):
    return x + y


def describe(*args, **kwargs):
    """Echo the call: (args, sorted kwargs items)."""
    return args, sorted(kwargs.items())


def pid_of(_=None):
    return os.getpid()


def square(x):
    return x * x


def collect_garbage(_=None):
    """Run the cyclic garbage collector (in a worker process) now."""
    gc.collect()
    return 0


def fail_on(x, bad=()):
    if x in bad:
        raise ValueError(f"bad item {x}")
    return x


class CustomError(Exception):
    """An exception with an attribute of its own."""

    def __init__(self, message, code=None):
        super().__init__(message, code)
        self.code = code


class StubbornError(Exception):
    """An exception that cannot be pickled: it holds a lock."""

    def __init__(self, a, b):
        super().__init__(f"{a}-{b}")
        self.lock = threading.Lock()


@parallel.decorate
def decorated_square(x):
    """Square x (decorated at module level)."""
    return x * x


@parallel.decorated(executor=parallel.PROCESS_EXECUTOR)
def decorated_pid(_=None):
    return os.getpid()
