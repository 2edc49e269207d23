"""Runs each halting hang scenario many times, each in a fresh interpreter with
a deadline, and counts the runs that hung or failed.

A scenario opens a ``pylateral.task_pool()`` whose tasks are busy inside the
standard library (importing, logging, ``json.dumps``, ``queue.Queue.get``,
``with lock:``, an HTTP request) while another task raises.  The pool must
stop those tasks at safe points only, so the ``with`` block always ends and
raises the failing task's error.  An asynchronous exception landing between a
lock's ``acquire()`` and its ``try:`` (the old way of halting) hung these
programs in up to a third of the runs.

    python scripts/hang_scenarios.py                     # every scenario, 200 runs each
    python scripts/hang_scenarios.py --runs 20 --scenario logging --scenario lock

Exits 1 if any run hung or failed.  tests/test_halting_safe_points.py runs each
scenario a few times through :func:`run_scenario`.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

#: Printed by a child whose pool raised the expected error and then exited.
OK = "HALTED-OK"

_PRELUDE = """
import os, sys, threading, time
import pylateral

class Boom(Exception):
    pass

started = threading.Semaphore(0)

@pylateral.task
def fail_soon(busy_tasks):
    for _ in range(busy_tasks):  # every busy task is inside its work
        started.acquire()
    time.sleep(0.002)
    raise Boom("the failing task")

def expect_boom(body, expected=Boom):
    try:
        with pylateral.task_pool(max_workers=10):
            body()
    except expected:
        assert pylateral.get_current_task_pool() is None
        print("%s", flush=True)
    else:
        print("no error was raised", flush=True)
"""

SCENARIOS = {
    # Four tasks import a slow module nobody imported yet, under importlib's
    # module lock, while another task raises.
    "import": """
        sys.path.insert(0, os.environ["HANG_SCRATCH"])
        name = "slow_module_%d" % os.getpid()
        with open(os.path.join(os.environ["HANG_SCRATCH"], name + ".py"), "w") as f:
            f.write("import time\\nfor _ in range(200):\\n    time.sleep(0.0005)\\nVALUE = 1\\n")

        @pylateral.task
        def importer():
            started.release()
            __import__(name)

        def body():
            for _ in range(4):
                importer()
            fail_soon(4)
        expect_boom(body)
    """,
    # Eight tasks log in a tight loop (logging's handler and module locks).
    "logging": """
        import logging
        logging.basicConfig(stream=open(os.devnull, "w"), level=logging.INFO)
        log = logging.getLogger("scenario")

        @pylateral.task
        def chatter():
            started.release()
            while True:
                log.info("working %d", 1)

        def body():
            for _ in range(8):
                chatter()
            fail_soon(8)
        expect_boom(body)
    """,
    # Tasks inside json.dumps of a large object (the encoder's Python path).
    "json": """
        import json
        big = [{"k%d" % i: [i, str(i), {"x": i}]} for i in range(3000)]

        @pylateral.task
        def encoder():
            started.release()
            while True:
                json.dumps(big, indent=1)

        def body():
            for _ in range(4):
                encoder()
            fail_soon(4)
        expect_boom(body)
    """,
    # Tasks blocked in queue.Queue.get(timeout=...) (a Condition and its lock).
    "queue": """
        import queue
        q = queue.Queue()

        @pylateral.task
        def consumer():
            started.release()
            while True:
                try:
                    q.get(timeout=0.001)
                except queue.Empty:
                    pass

        def body():
            for _ in range(4):
                consumer()
            fail_soon(4)
        expect_boom(body)
    """,
    # Tasks taking a shared lock with a with-block, over and over.
    "lock": """
        lock = threading.Lock()
        state = [0]

        @pylateral.task
        def locker():
            started.release()
            while True:
                with lock:
                    state[0] += 1

        def body():
            for _ in range(6):
                locker()
            fail_soon(6)
            time.sleep(0.05)
            with lock:  # the main thread needs the lock back
                pass
        expect_boom(body)
    """,
    # The README's first example: fetch and print URLs, one of which fails.
    "readme": """
        import urllib.error, urllib.request
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/missing":
                    self.send_error(404)
                    return
                body = b"x" * 2000
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = "http://127.0.0.1:%d" % server.server_address[1]

        @pylateral.task
        def request_and_print(url):
            response = urllib.request.urlopen(url)
            print(len(response.read()), file=open(os.devnull, "w"))

        def body():
            for i in range(12):
                request_and_print(base + ("/missing" if i == 5 else "/page%d" % i))

        expect_boom(body, urllib.error.HTTPError)
    """,
}


def scenario_source(name):
    """The child program of scenario ``name``."""
    return (_PRELUDE % OK) + textwrap.dedent(SCENARIOS[name])


def run_scenario(name, deadline=30.0, python=sys.executable, env=None):
    """Runs scenario ``name`` once in a fresh interpreter.

    Returns ``("ok" | "hang" | "failed", detail)``: "hang" when the deadline
    ran out (the child is killed), "failed" when it exited without printing
    :data:`OK`.
    """
    source = scenario_source(name)
    with tempfile.TemporaryDirectory() as scratch:
        child_env = dict(os.environ if env is None else env, HANG_SCRATCH=scratch)
        try:
            done = subprocess.run([python, "-c", source], capture_output=True, text=True,
                                  timeout=deadline, env=child_env)
        except subprocess.TimeoutExpired as exc:
            return "hang", (exc.stderr or b"").decode(errors="replace")[-2000:]
    if done.returncode == 0 and OK in done.stdout:
        return "ok", ""
    return "failed", f"exit {done.returncode}\n{done.stdout[-1000:]}\n{done.stderr[-2000:]}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="runs per scenario (default 200)")
    parser.add_argument("--deadline", type=float, default=30.0,
                        help="seconds a run may take before it counts as hung (default 30)")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS),
                        help="run only this scenario (repeatable)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (default 2)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter to run the scenarios with (default: this one)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.jobs < 1 or args.deadline <= 0:
        parser.error("--runs and --jobs must be at least 1 and --deadline positive")
    names = args.scenario or list(SCENARIOS)
    bad = 0
    print(f"{'scenario':10} {'runs':>5} {'ok':>5} {'hung':>5} {'failed':>6} {'seconds':>8}")
    for name in names:
        start = time.monotonic()
        with ThreadPoolExecutor(args.jobs) as ex:
            outcomes = list(ex.map(lambda _: run_scenario(name, args.deadline, args.python),
                                   range(args.runs)))
        counts = {k: sum(1 for o, _ in outcomes if o == k) for k in ("ok", "hang", "failed")}
        print(f"{name:10} {args.runs:5} {counts['ok']:5} {counts['hang']:5} {counts['failed']:6} "
              f"{time.monotonic() - start:8.1f}", flush=True)
        for outcome, detail in outcomes:
            if outcome != "ok":
                print(f"  first {outcome}: {detail}", file=sys.stderr)
                break
        bad += counts["hang"] + counts["failed"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
