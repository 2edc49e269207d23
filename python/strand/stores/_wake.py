"""Wake-ups between the processes of one machine, for the SQLite store.

SQLite tells nobody when a row changes.  So that an idle reader does not
poll, and a writer waiting for a result does not either, whoever waits binds
a Unix datagram socket in a directory of the store's own (under the temp
directory, named after the database file), and whoever changes the store
sends one datagram to each socket there: a writer after adding a task
("task" sockets), a reader after writing an outcome ("done" sockets, the
datagram holds the task id).

A wake-up is a hint: the waiter looks at the store again, and waits with a
timeout in any case, so a lost datagram (another temp directory, a full
buffer) only delays it.
"""
import errno
import hashlib
import os
import select
import socket
import tempfile
import uuid

TASK = "task"
DONE = "done"

# A datagram bigger than a task id is never sent.
_MAX_DATAGRAM = 4096


class WakeChannel:
    """The sockets of one store file."""

    def __init__(self, key: str) -> None:
        digest = hashlib.sha256(os.fsencode(key)).hexdigest()[:16]
        self.directory = os.path.join(tempfile.gettempdir(),
                                      f"strand-{os.getuid()}-{digest}")
        self._sender: socket.socket | None = None
        self._pid: int  # set with _sender
        # kind -> (directory mtime, socket paths); one assignment each, which
        # the GIL makes whole
        self._listing: dict[str, tuple[int, tuple[str, ...]]] = {}

    def listen(self, kind: str) -> "Listener":
        """A :class:`Listener` of ``kind`` wake-ups (bound at once: a wake-up
        sent from now on is kept until it is read)."""
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        return Listener(os.path.join(self.directory, f"{kind}-{os.getpid()}-"
                                                     f"{uuid.uuid4().hex[:12]}"))

    def notify(self, kind: str, payload: bytes = b"") -> None:
        """Send ``payload`` to every listener of ``kind``; never blocks or raises."""
        for path in self._paths(kind):
            try:
                self._socket().sendto(payload, path)
            except (ConnectionRefusedError, FileNotFoundError):
                _unlink(path)  # its process died without removing it
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.ENOBUFS):
                    raise
                # a full buffer: that listener has wake-ups to read already

    def _socket(self) -> socket.socket:
        sender = self._sender
        if sender is None or self._pid != os.getpid():
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.setblocking(False)
            self._sender, self._pid = sender, os.getpid()
        return sender

    def _paths(self, kind: str) -> tuple[str, ...]:
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except FileNotFoundError:
            return ()
        cached = self._listing.get(kind)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        prefix = kind + "-"
        try:
            paths = tuple(os.path.join(self.directory, name)
                          for name in os.listdir(self.directory) if name.startswith(prefix))
        except FileNotFoundError:
            return ()
        self._listing[kind] = (mtime, paths)
        return paths


class Listener:
    """One bound socket: ``wait(timeout)`` returns the payloads received
    (an empty list when the timeout passed first)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(path)
        self._socket.setblocking(False)

    def wait(self, timeout: float) -> list[bytes]:
        """Wait up to ``timeout`` seconds for wake-ups; all that came, drained."""
        poller = select.poll()
        try:
            poller.register(self._socket, select.POLLIN)
            ready = poller.poll(max(0, int(timeout * 1000 + 0.999)))
        except (OSError, ValueError):  # closed by another thread
            return []
        return self.drain() if ready else []

    def drain(self) -> list[bytes]:
        """The payloads already received, without waiting."""
        payloads: list[bytes] = []
        while True:
            try:
                payloads.append(self._socket.recv(_MAX_DATAGRAM))
            except (BlockingIOError, OSError):
                return payloads

    def close(self) -> None:
        """Stop listening and remove the socket file."""
        _unlink(self.path)
        self._socket.close()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
