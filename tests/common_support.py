"""Helpers shared by the test modules of the three packages."""
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Generous bound for anything that should happen "soon" on a noisy machine.
PATIENCE = 20.0

#: True when the suite runs under AddressSanitizer or valgrind
#: (``scripts/asan_tests.sh`` and ``scripts/valgrind_stress.sh`` set
#: ``LATERAL_SANITIZED=1``): their allocators keep freed memory in
#: quarantine, so resident-memory comparisons mean nothing there.
SANITIZED = os.environ.get("LATERAL_SANITIZED", "") not in ("", "0")


def _stress_scale():
    raw = os.environ.get("LATERAL_STRESS_SCALE", "1")
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"LATERAL_STRESS_SCALE must be a number, got {raw!r}") from None
    if not 0 < scale <= 100:
        raise ValueError(f"LATERAL_STRESS_SCALE must be in (0, 100], got {raw!r}")
    return scale


#: Multiplier for the iteration counts of the stress tests; the valgrind run
#: shrinks them (``LATERAL_STRESS_SCALE=0.01``) because memcheck is ~50x slower.
STRESS_SCALE = _stress_scale()


def scaled(count, minimum=1):
    """``count`` iterations scaled by ``STRESS_SCALE`` (at least ``minimum``)."""
    return max(minimum, int(count * STRESS_SCALE))


def wait_until(predicate, timeout=PATIENCE, interval=0.005):
    """Poll ``predicate`` until it is true; False if ``timeout`` ran out."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def process_ended(pid):
    """True once ``pid`` has ended: gone, or a zombie nobody reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
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


class HandlerRaised(BaseException):
    """What a signal handler raises (as KeyboardInterrupt is, a BaseException;
    not that one, which would end the test session if a regression let it out)."""


class RaisesAsWithBegins:
    """A lock on which a signal handler raises as a with block in the main
    thread has just taken it: CPython 3.14 runs pending handlers right after
    __enter__, and handlers run in the main thread only."""

    def __init__(self, make_lock=threading.Lock):
        self._lock = make_lock()

    def acquire(self, *args, **kwargs):
        return self._lock.acquire(*args, **kwargs)

    def release(self):
        self._lock.release()

    def locked(self):  # threading.Condition asks it on 3.14+
        return self._lock.locked()

    def __enter__(self):
        self._lock.acquire()
        if threading.current_thread() is threading.main_thread():
            raise HandlerRaised("a signal handler raised as the with block began")

    def __exit__(self, *exc_info):
        self._lock.release()
