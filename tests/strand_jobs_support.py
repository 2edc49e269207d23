"""Task functions for the tests of strand as a job runner (the worker
command imports this module: ``strand worker STORE --import strand_jobs_support``)."""
import os
import threading
import time

from strand_support import wait_until


def plus(a, b=0):
    return a + b


def gate(path, value):
    """Returns ``value`` once the file ``path`` exists: the test decides
    when the task ends."""
    wait_until(lambda: os.path.exists(path), timeout=60)
    return value


def announce_then_gate(directory, tag, gate_path):
    """Writes ``directory/tag`` when it starts, then waits for ``gate_path``."""
    open(os.path.join(directory, tag), "w").close()
    return gate(gate_path, tag)


def fail_until(directory, succeed_on):
    """Fails until it has been called ``succeed_on`` times (counted in files
    of ``directory``); returns the number of calls."""
    calls = len(os.listdir(directory)) + 1
    open(os.path.join(directory, f"call-{calls}-{time.time()}"), "w").close()
    if calls < succeed_on:
        raise RuntimeError(f"call {calls} fails")
    return calls


def sleep_for(seconds):
    time.sleep(seconds)
    return seconds


def pid():
    return os.getpid()


class Meeting:
    """At most how many tasks were inside at once, and a barrier they can
    meet at (tasks of one in-process reader)."""

    def __init__(self, parties):
        self.barrier = threading.Barrier(parties, timeout=30)
        self.inside = 0
        self.most = 0
        self.lock = threading.Lock()

    def meet(self, value):
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        try:
            self.barrier.wait()
            return value
        finally:
            with self.lock:
                self.inside -= 1

    def count(self, value, pause):
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        time.sleep(pause)
        with self.lock:
            self.inside -= 1
        return value


def write_pid_and_sleep(path, seconds):
    """Writes its pid to ``path``, then sleeps (a process task to be killed)."""
    with open(path + ".tmp", "w") as out:
        out.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
    time.sleep(seconds)
    return "slept"
