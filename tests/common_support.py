"""Helpers shared by the test modules of the three packages."""
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Generous bound for anything that should happen "soon" on a noisy machine.
PATIENCE = 20.0


def wait_until(predicate, timeout=PATIENCE, interval=0.005):
    """Poll ``predicate`` until it is true; False if ``timeout`` ran out."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


class Counter:
    """A thread-safe counter that remembers its highest value and the sum of
    its increments."""

    def __init__(self):
        self.value = 0
        self.peak = 0
        self.total = 0
        self._lock = threading.Lock()

    def add(self, n=1):
        """Add ``n`` (may be negative); returns the new value."""
        with self._lock:
            self.value += n
            self.peak = max(self.peak, self.value)
            if n > 0:
                self.total += n
            return self.value


class LoopbackSite:
    """A threaded HTTP server on 127.0.0.1 (a free port), one thread per
    request, standing in for the documents' websites.  Subclasses answer in
    ``respond(handler)``; every request path is recorded in ``requests``."""

    thread_name = "loopback-site"

    def __init__(self):
        self.requests = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=self.thread_name, daemon=True)

    @property
    def base(self):
        """``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path):
        """The absolute URL of ``path`` on this server."""
        return self.base + path

    def start(self):
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self):
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(PATIENCE)

    def respond(self, handler):
        raise NotImplementedError

    def _record_and_respond(self, handler):
        with self._lock:
            self.requests.append(handler.path)
        self.respond(handler)

    def _handler_class(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                site._record_and_respond(self)

            def log_message(self, *args):  # keep the test output clean
                pass

        return Handler
