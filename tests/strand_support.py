"""Task functions and helpers shared by the strand tests.

The functions live in a module (not in the test files) so that child
processes and reader processes started by the tests can import them.
Run as ``python strand_support.py reader STORE [--lease S] [--name N]`` it is
a reader process: it prints ``ready`` and runs tasks until its stdin closes.
"""
import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time

import strand

HERE = os.path.dirname(os.path.abspath(__file__))


# --- task functions ------------------------------------------------------------

def add(a, b=0):
    return a + b


def long_blocking_function(total_size, chunk_size):
    """The document's example function, with ``//`` (its ``/`` gives a float,
    which ``range`` refuses)."""
    if total_size < chunk_size:
        total_size = chunk_size
    big_list = range(total_size)
    return (big_list[chunk_size * n:chunk_size * (n + 1)] for n in range(total_size // chunk_size))


def long_blocking_function_as_written(total_size, chunk_size):
    """The document's example function exactly as written."""
    if total_size < chunk_size:
        total_size = chunk_size
    big_list = range(total_size)
    return (big_list[chunk_size * n:chunk_size * (n + 1)] for n in range(total_size / chunk_size))


def squares(n):
    for i in range(n):
        yield i * i


def pid_and_value(value):
    return os.getpid(), value


def fail(message):
    raise ValueError(message)


def kill_self():
    os.kill(os.getpid(), 9)


def wait_for_file(path, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.01)


def record_run(log_path, tag, delay=0.0):
    """Appends ``tag pid`` to ``log_path`` (one small O_APPEND write: atomic)."""
    time.sleep(delay)
    with open(log_path, "a") as log:
        log.write(f"{tag} {os.getpid()}\n")
    return tag


def rendezvous(directory, parties, timeout=30.0):
    """Wait until ``parties`` processes have arrived; returns this pid.  With
    readers that run one task at a time, two of these tasks can only both
    finish if two different readers run them."""
    open(os.path.join(directory, str(os.getpid())), "w").close()
    deadline = time.monotonic() + timeout
    while len(os.listdir(directory)) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError("the other reader never arrived")
        time.sleep(0.01)
    return os.getpid()


def stall_first_attempt(marker):
    """The first run writes ``marker`` and hangs (its reader gets killed);
    a later run returns which pid recovered the task."""
    if not os.path.exists(marker):
        with open(marker, "w") as out:
            out.write(str(os.getpid()))
        time.sleep(120)
    return f"recovered by {os.getpid()}"


def touch(path):
    open(path, "w").close()
    return path


def touch_and_wait(path):
    """A child process that announces itself with ``path`` and runs until
    it is stopped."""
    touch(path)
    while True:
        time.sleep(0.05)


@strand.as_task("process")
def decorated_square(x):
    return x * x


READER_FUNCTIONS = [add, record_run, rendezvous, stall_first_attempt, pid_and_value, fail]


# --- processes -------------------------------------------------------------------

def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout=30.0, interval=0.01):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def make_store(kind, tmp_path, request):
    """A fresh task store of ``kind`` (``'dict'``, ``'sqlite'`` or ``'redis'``)
    for one test.  ``'redis'`` asks the test module's ``redis_url`` fixture
    for its server and takes a namespace of the test's own."""
    if kind == "dict":
        return {}
    if kind == "sqlite":
        return strand.SqliteStore(tmp_path / "tasks.sqlite3")
    return strand.RedisStore(request.getfixturevalue("redis_url"), namespace=request.node.name)


@contextlib.contextmanager
def redis_server():
    """A throw-away ``redis-server`` on a loopback port; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        import pytest
        why = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("LATERAL_REQUIRE_REDIS") == "1":  # CI: a skip would hide it
            pytest.fail(why)
        pytest.skip(why)
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis
        client = redis.Redis(port=port)
        wait_until(lambda: _pings(client), timeout=20)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def _pings(client):
    try:
        return client.ping()
    except Exception:
        return False


class ReaderProcess:
    """A StoreTaskReader in a child Python process (see the module doc)."""

    def __init__(self, store, lease=30.0, name=None, namespace=None):
        args = [sys.executable, os.path.join(HERE, "strand_support.py"), "reader", store,
                "--lease", str(lease)]
        if name:
            args += ["--name", name]
        if namespace:
            args += ["--namespace", namespace]
        self.name = name
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            self.process.kill()
            raise RuntimeError(f"the reader process did not start: {line!r}")
        self.pid = self.process.pid

    def stop(self, timeout=30):
        """Close its stdin: the reader stops after its current task."""
        self.process.stdin.close()
        return self.process.wait(timeout)

    def kill(self):
        self.process.kill()
        self.process.wait(10)


def _reader_main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--name")
    parser.add_argument("--namespace", help="a RedisStore namespace")
    options = parser.parse_args(argv)
    store = options.store
    if options.namespace:
        store = strand.RedisStore(store, namespace=options.namespace)
    reader = strand.StoreTaskReader(store, functions=READER_FUNCTIONS,
                                    lease=options.lease, name=options.name,
                                    max_poll_interval=0.05)
    reader.listen()
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes our stdin
    reader.stop()


def exit_with(code):
    """A task that calls ``sys.exit(code)``."""
    sys.exit(code)


class UnprintableError(Exception):
    """Neither printable (``__str__`` raises) nor picklable."""

    def __str__(self):
        raise ValueError("no text")

    def __reduce__(self):
        raise TypeError("not picklable")


def raise_unprintable():
    raise UnprintableError()


if __name__ == "__main__" and sys.argv[1:2] == ["reader"]:
    sys.path.insert(0, HERE)
    import strand_support  # run the reader with this module's functions under their real names
    strand_support._reader_main(sys.argv[2:])

