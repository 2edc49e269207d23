#!/usr/bin/env python3
"""Benchmark strand's store reader as a job runner against huey, in one run.

Measured on each backend (SQLite, Redis), for strand and for huey (installed
in a separate virtualenv: never a dependency of this project):

1. drain rate: N no-op tasks are queued, then a worker with 8-way
   concurrency (strand: ``StoreTaskReader(concurrency=8)``; huey: a consumer
   with 8 worker threads) is started in the same process and timed until
   every outcome is stored;
2. latency: a worker in another process, idle; the benchmark writes one
   task and waits for its result the way each library's users do
   (``task.result()``; huey: ``result.get(blocking=True)``), 10 ms apart;
   p50 and p99 of submit-to-result;
3. makespan: 500 tasks of ``time.sleep(0.02)`` on a worker with
   concurrency 8, timed as in 1, over the ideal 1.25 s.

Every measurement runs in a fresh subprocess (huey's with huey's Python).
A missed target is a finding, not a failure: the exit code is 0 unless a
measurement of strand could not run at all.

Usage: ``python bench/bench_strand.py [--quick] [--skip-huey]
[--huey-python PATH] [--json PATH]``
"""
import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_HUEY_PYTHON = os.environ.get("HUEY_PYTHON", "/work/venv-huey/bin/python")

STRAND, HUEY = "strand", "huey"
LIBS = (STRAND, HUEY)
BACKENDS = ("sqlite", "redis")
DRAIN, LATENCY, MAKESPAN = "drain", "latency", "makespan"

CONCURRENCY = 8
SLEEP_S = 0.02
LATENCY_PAUSE_S = 0.01
CHILD_TIMEOUT_S = 600

# (full, quick)
SIZES = {"repeats": (3, 1), "drain": (2000, 300), "latency": (300, 40),
         "makespan": (500, 100)}

TARGETS = {"drain_ratio": 2.0, "p50_ms": 5.0, "p99_ms": 25.0, "makespan_ratio": 1.15}


# ---------------------------------------------------------------------------
# Child side: one measurement, printed as one JSON line.
# ---------------------------------------------------------------------------

def noop(i=0):
    """The no-op task."""
    return i


def nap(i=0):
    """The 20 ms task of the makespan measurement."""
    time.sleep(SLEEP_S)
    return i


def strand_store(spec):
    """The strand store a spec names (imports strand: our Python only)."""
    sys.path.insert(0, os.path.join(REPO, "python"))
    import strand
    if spec["backend"] == "sqlite":
        return strand.SqliteStore(spec["location"])
    return strand.RedisStore(spec["location"], namespace=spec["namespace"])


def huey_instance(spec):
    """The huey instance a spec names, with its tasks and a completion
    counter (imports huey: huey's Python only)."""
    import huey
    if spec["backend"] == "sqlite":
        instance = huey.SqliteHuey(filename=spec["location"], results=True)
    else:
        instance = huey.RedisHuey(spec["namespace"], url=spec["location"], results=True)
    tasks = {"noop": instance.task()(noop), "nap": instance.task()(nap)}
    done = []
    instance.signal(huey.signals.SIGNAL_COMPLETE)(lambda signal, task, *a, **k:
                                                   done.append(None))
    return instance, tasks, done


def wait_for(count_done, n, timeout=CHILD_TIMEOUT_S):
    """Sleep 1 ms at a time until ``count_done() >= n``."""
    deadline = time.perf_counter() + timeout
    while count_done() < n:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{count_done()} of {n} tasks done")
        time.sleep(0.001)


def timed_drain(spec, task_name):
    """Queue ``spec['n']`` tasks, start a worker, time until all are done."""
    n = spec["n"]
    if spec["lib"] == STRAND:
        import strand
        store = strand_store(spec)
        func = {"noop": noop, "nap": nap}[task_name]
        writer = strand.StoreTaskWriter(func, store)
        for i in range(n):
            writer(i)
        reader = strand.StoreTaskReader(store, functions=[func], concurrency=CONCURRENCY)
        started = time.perf_counter()
        reader.listen()
        wait_for(lambda: reader.completed, n)
        elapsed = time.perf_counter() - started
        reader.stop(30)
        return elapsed
    instance, tasks, done = huey_instance(spec)
    for i in range(n):
        tasks[task_name](i)
    consumer = instance.create_consumer(workers=CONCURRENCY, worker_type="thread",
                                        periodic=False, check_worker_health=False)
    started = time.perf_counter()
    consumer.start()
    wait_for(lambda: len(done), n)
    elapsed = time.perf_counter() - started
    consumer.stop(graceful=True)
    return elapsed


def measure_latency(spec):
    """Submit-to-result times against an idle worker in another process."""
    worker = subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        if worker.stdout.readline().strip() != "ready":
            raise RuntimeError("the worker process did not start")
        if spec["lib"] == STRAND:
            import strand
            writer = strand.StoreTaskWriter(noop, strand_store(spec))
            call = lambda: writer().result(30)
        else:
            tasks = huey_instance(spec)[1]
            call = lambda: tasks["noop"]().get(blocking=True, timeout=30)
        for _ in range(5):  # warm-up
            call()
        samples = []
        for _ in range(spec["n"]):
            time.sleep(LATENCY_PAUSE_S)
            started = time.perf_counter()
            call()
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        worker.stdin.close()
        worker.wait(60)
    samples.sort()
    return {"p50_ms": statistics.median(samples),
            "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
            "count": len(samples)}


def run_worker(spec):
    """The idle worker of the latency measurement: runs until stdin closes."""
    if spec["lib"] == STRAND:
        import strand
        reader = strand.StoreTaskReader(strand_store(spec), functions=[noop]).listen()
        print("ready", flush=True)
        sys.stdin.read()
        reader.stop(30)
        return
    instance = huey_instance(spec)[0]
    consumer = instance.create_consumer(workers=1, worker_type="thread", periodic=False,
                                        check_worker_health=False)
    consumer.start()
    print("ready", flush=True)
    sys.stdin.read()
    consumer.stop(graceful=True)


def run_child(spec):
    """One measurement; prints its figures as JSON on the last line."""
    if spec["kind"] == DRAIN:
        elapsed = timed_drain(spec, "noop")
        result = {"rate": spec["n"] / elapsed, "seconds": elapsed, "count": spec["n"]}
    elif spec["kind"] == MAKESPAN:
        elapsed = timed_drain(spec, "nap")
        ideal = spec["n"] * SLEEP_S / CONCURRENCY
        result = {"ratio": elapsed / ideal, "seconds": elapsed, "ideal": ideal,
                  "count": spec["n"]}
    else:
        result = measure_latency(spec)
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------------------
# Parent side: servers, subprocesses, table.
# ---------------------------------------------------------------------------

class RedisServer:
    """A throw-away redis-server on a loopback port (None if not installed)."""

    def __init__(self):
        self.binary = shutil.which("redis-server")
        self.process = None
        self.url = None

    def __enter__(self):
        if self.binary is None:
            return self
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.process = subprocess.Popen(
            [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)
        self.url = f"redis://127.0.0.1:{port}/0"
        return self

    def __exit__(self, *exc_info):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(20)


def run_one(python, spec, scratch):
    """Run one measurement in a fresh subprocess; its figures or {'error': ...}."""
    spec = dict(spec, namespace=f"bench-{uuid.uuid4().hex[:12]}")
    if spec["backend"] == "sqlite":
        spec["location"] = os.path.join(scratch, f"{spec['namespace']}.db")
    try:
        proc = subprocess.run([python, __file__, "--child", json.dumps(spec)],
                              capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def run_all(sizes, pythons, redis_url):
    """Every measurement, libraries interleaved run after run; best run kept
    for timings (load only ever adds time)."""
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-strand-") as scratch:
        for repeat in range(sizes["repeats"]):
            for backend in BACKENDS:
                location = redis_url if backend == "redis" else None
                if backend == "redis" and redis_url is None:
                    continue
                for kind in (DRAIN, LATENCY, MAKESPAN):
                    for lib, python in pythons.items():
                        spec = {"kind": kind, "lib": lib, "backend": backend,
                                "location": location, "n": sizes[kind]}
                        print(f"[{repeat + 1}/{sizes['repeats']}] {lib} {backend} {kind}",
                              file=sys.stderr, flush=True)
                        runs.setdefault((kind, lib, backend), []).append(
                            run_one(python, spec, scratch))
    return {key: best(key[0], results) for key, results in runs.items()}


def best(kind, results):
    """The best good run (highest rate, lowest p50 or ratio), with every run."""
    good = [r for r in results if "error" not in r]
    if not good:
        return {"error": results[-1]["error"], "runs": results}
    if kind == DRAIN:
        chosen = max(good, key=lambda r: r["rate"])
    elif kind == LATENCY:
        chosen = min(good, key=lambda r: r["p50_ms"])
    else:
        chosen = min(good, key=lambda r: r["ratio"])
    return dict(chosen, runs=results)


class Row:
    """One line of the table."""

    def __init__(self, title, cells, target="", passed=None):
        self.title, self.cells, self.target, self.passed = title, cells, target, passed

    def verdict(self):
        """PASS, MISS, or '-' for a row without a target."""
        return {True: "PASS", False: "MISS", None: "-"}[self.passed]


def figure(figures, key, name):
    """A figure, or None if missing or failed."""
    entry = figures.get(key)
    return None if entry is None or "error" in entry else entry.get(name)


def text(figures, key, name, fmt):
    """Table text for a figure: formatted, 'error' or 'unavailable'."""
    entry = figures.get(key)
    if entry is None:
        return "unavailable"
    return "error" if "error" in entry else fmt(entry[name])


def build_rows(figures):
    """Every table row, backend by backend."""
    rows = []
    for backend in BACKENDS:
        rows += backend_rows(figures, backend)
    return rows


def backend_rows(figures, backend):
    """The rows of one backend: drain, its ratio, latency, makespan."""
    key = lambda kind, lib: (kind, lib, backend)
    cells = lambda kind, name, fmt: [text(figures, key(kind, lib), name, fmt) for lib in LIBS]
    rate, ms = (lambda v: f"{v:,.0f}"), (lambda v: f"{v:.1f}")
    ours, theirs = figure(figures, key(DRAIN, STRAND), "rate"), \
        figure(figures, key(DRAIN, HUEY), "rate")
    drain_ratio = None if ours is None or not theirs else ours / theirs
    p50 = figure(figures, key(LATENCY, STRAND), "p50_ms")
    p99 = figure(figures, key(LATENCY, STRAND), "p99_ms")
    makespan = figure(figures, key(MAKESPAN, STRAND), "ratio")
    target = TARGETS
    return [
        Row(f"{backend}: drain, {CONCURRENCY}-way (tasks/s)", cells(DRAIN, "rate", rate)),
        Row(f"  {backend}: drain, strand / huey",
            ["" if drain_ratio is None else f"{drain_ratio:.2f}x", ""],
            f">= {target['drain_ratio']:g}x",
            None if drain_ratio is None else drain_ratio >= target["drain_ratio"]),
        Row(f"{backend}: latency p50, idle worker (ms)", cells(LATENCY, "p50_ms", ms),
            f"<= {target['p50_ms']:g}", None if p50 is None else p50 <= target["p50_ms"]),
        Row(f"{backend}: latency p99 (ms)", cells(LATENCY, "p99_ms", ms),
            f"<= {target['p99_ms']:g}", None if p99 is None else p99 <= target["p99_ms"]),
        Row(f"{backend}: makespan 20 ms tasks, {CONCURRENCY}-way / ideal",
            cells(MAKESPAN, "ratio", lambda v: f"{v:.3f}"),
            f"<= {target['makespan_ratio']:g}",
            None if makespan is None else makespan <= target["makespan_ratio"]),
    ]


HEADER = ("measurement", "strand (ours)", "huey", "target", "result")


def print_table(rows):
    """Aligned columns under HEADER."""
    widths = [max(len(HEADER[0]), *(len(r.title) for r in rows)),
              max(len(HEADER[1]), *(len(r.cells[0]) for r in rows)),
              max(len(HEADER[2]), *(len(r.cells[1]) for r in rows)),
              max(len(HEADER[3]), *(len(r.target) for r in rows))]
    line = lambda cols: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                  for i, (c, w) in enumerate(zip(cols, widths))) \
        + "  " + cols[-1]
    print(line(HEADER))
    print("-" * (sum(widths) + 2 * len(widths) + len("result")))
    for r in rows:
        print(line([r.title, *r.cells, r.target, r.verdict()]))


def print_runs(figures):
    """Every run's figure, so a reader can judge the spread."""
    print("\nruns (* = the run used above):")
    name = {DRAIN: "rate", LATENCY: "p50_ms", MAKESPAN: "ratio"}
    for (kind, lib, backend), entry in sorted(figures.items()):
        runs = ", ".join(r["error"] if "error" in r else f"{r[name[kind]]:.4g}"
                         for r in entry["runs"])
        shown = "error" if "error" in entry else f"{entry[name[kind]]:.4g}*"
        print(f"  {backend} {kind} {lib} [{name[kind]}]: {shown}  runs: {runs}")


def huey_python(path):
    """``path`` if it is a Python that imports huey, else None (and why)."""
    if not path or not os.path.exists(path):
        return None, f"no Python at {path!r} (pass --huey-python or set HUEY_PYTHON)"
    proc = subprocess.run([path, "-c", "import huey; print(huey.__version__)"],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        return None, f"{path} cannot import huey"
    return path, f"huey {proc.stdout.strip()} ({path})"


def parse_args(argv):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller counts and one run each (smoke test)")
    parser.add_argument("--skip-huey", action="store_true", help="measure strand only")
    parser.add_argument("--huey-python", default=DEFAULT_HUEY_PYTHON,
                        help="a Python of a virtualenv with huey (and redis) installed")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    """Run the benchmark (or, with --child/--worker, one part of it)."""
    args = parse_args(argv)
    if args.child:
        run_child(json.loads(args.child))
        return 0
    if args.worker:
        run_worker(json.loads(args.worker))
        return 0
    sizes = {name: pair[1 if args.quick else 0] for name, pair in SIZES.items()}
    load_start = os.getloadavg()
    print(f"python {platform.python_version()} ({sys.executable}), "
          f"{os.cpu_count()} CPUs, load average {', '.join(f'{x:.2f}' for x in load_start)}")
    pythons = {STRAND: sys.executable}
    if args.skip_huey:
        print("huey: skipped (--skip-huey)")
    else:
        path, note = huey_python(args.huey_python)
        print(f"huey: {note}" if path else f"huey: unavailable ({note})")
        if path:
            pythons[HUEY] = path
    with RedisServer() as server:
        if server.url is None:
            print("redis: unavailable (redis-server is not installed)")
        figures = run_all(sizes, pythons, server.url)
    rows = build_rows(figures)
    print()
    print_table(rows)
    print_runs(figures)
    load_end = os.getloadavg()
    print(f"end: load average {', '.join(f'{x:.2f}' for x in load_end)}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"python": sys.version, "cpu_count": os.cpu_count(), "quick": args.quick,
                       "loadavg_start": load_start, "loadavg_end": load_end,
                       "figures": [{"kind": k[0], "library": k[1], "backend": k[2], **v}
                                   for k, v in figures.items()],
                       "rows": [{"measurement": r.title.strip(), "cells": dict(zip(LIBS, r.cells)),
                                 "target": r.target, "result": r.verdict()} for r in rows]},
                      out, indent=2)
    broken = [k for k, v in figures.items() if "error" in v and k[1] == STRAND]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
