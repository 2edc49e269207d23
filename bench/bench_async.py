#!/usr/bin/env python3
"""The cost of awaiting parallel from an event loop, against the standard ways.

One run measures, on one asyncio event loop, the time of one round of three
short calls (each returns its argument times two), awaited:

1. ``await parallel.async_par([(f, 1), (f, 2), (f, 3)])`` (ours);
2. ``await asyncio.gather(*(loop.run_in_executor(None, f, x) for x in ...))``;
3. ``await asyncio.gather(*(asyncio.to_thread(f, x) for x in ...))``;

and, for reference only, ``parallel.par`` called in the coroutine (it blocks
the loop for the round: the thing awaiting avoids).  The contenders take
turns, round after round, so that a burst of load on the shared machine hits
them alike; each keeps its best round (load only ever adds time).  Every
pool is warm: parallel keeps its pools between calls, and the loop's default
executor is kept for the whole run.

The table gives microseconds per awaited round and ours over each peer,
with a target and PASS/MISS.  A missed target is a finding, not a failure:
the exit code is 0 unless a contender could not run at all (1).

Usage: ``python bench/bench_async.py [--quick] [--json PATH]``
"""
import argparse
import asyncio
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import parallel  # noqa: E402

OURS = "await parallel.async_par"
EXECUTOR = "gather(run_in_executor(None, f))"
TO_THREAD = "gather(asyncio.to_thread(f))"
BLOCKING = "parallel.par (blocks the loop)"
ARGS = (1, 2, 3)

#: ours / peer, at most (2 cores): awaiting parallel costs no more than the
#: standard library's ways of running blocking calls from a coroutine, give
#: or take the run-to-run noise of a shared machine (about 20 %).
TARGETS = {EXECUTOR: 1.2, TO_THREAD: 1.2}

# (full, quick): rounds of each contender, awaits per round, warm-up awaits.
SIZES = {"rounds": (15, 3), "awaits": (1000, 100), "warmup": (200, 20)}


def short(x):
    return x * 2


CALLS = [(short, x) for x in ARGS]
EXPECTED = [short(x) for x in ARGS]


async def ours():
    return list(await parallel.async_par(CALLS))


async def run_in_executor():
    loop = asyncio.get_running_loop()
    return await asyncio.gather(*(loop.run_in_executor(None, short, x) for x in ARGS))


async def to_thread():
    return await asyncio.gather(*(asyncio.to_thread(short, x) for x in ARGS))


async def blocking():
    return list(parallel.par(CALLS))


CONTENDERS = {OURS: ours, EXECUTOR: run_in_executor, TO_THREAD: to_thread,
              BLOCKING: blocking}


async def time_round(contender, awaits):
    """Seconds per await over ``awaits`` awaits; every result is checked."""
    start = time.perf_counter()
    for _ in range(awaits):
        if await contender() != EXPECTED:
            raise AssertionError(f"wrong results from {contender.__name__}")
    return (time.perf_counter() - start) / awaits


async def measure(sizes):
    """{name: {"best": seconds per await, "rounds": [...]}} or {"error": text}."""
    figures = {name: {"rounds": []} for name in CONTENDERS}
    for name, contender in CONTENDERS.items():
        try:
            await time_round(contender, sizes["warmup"])
        except Exception as exc:  # reported in the table, not fatal to the others
            figures[name] = {"error": f"{type(exc).__name__}: {exc}"}
    for _ in range(sizes["rounds"]):
        for name, contender in CONTENDERS.items():
            if "error" in figures[name]:
                continue
            try:
                figures[name]["rounds"].append(await time_round(contender, sizes["awaits"]))
            except Exception as exc:
                figures[name] = {"error": f"{type(exc).__name__}: {exc}"}
    for entry in figures.values():
        if "error" not in entry:
            entry["best"] = min(entry["rounds"])
    return figures


def ratio_rows(figures):
    """(title, text, target text, verdict) of ours over each peer."""
    rows = []
    ours_s = figures[OURS].get("best")
    for peer, target in TARGETS.items():
        peer_s = figures[peer].get("best")
        title = f"  ours / {peer}"
        if ours_s is None or peer_s is None:
            rows.append((title, "error", f"<= {target:.2f}x", "MISS"))
            continue
        value = ours_s / peer_s
        rows.append((title, f"{value:.2f}x", f"<= {target:.2f}x",
                     "PASS" if value <= target else "MISS"))
    return rows


def print_table(figures):
    rows = []
    for name, entry in figures.items():
        text = "error" if "error" in entry else f"{entry['best'] * 1e6:.1f}"
        target = "(reference)" if name == BLOCKING else ""
        rows.append((name, text, target, "-"))
    rows += ratio_rows(figures)
    header = ("measurement (3 short calls per await)", "us per await", "target", "result")
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(3)]
    line = lambda cols: "  ".join([cols[0].ljust(widths[0]), cols[1].rjust(widths[1]),
                                   cols[2].rjust(widths[2]), cols[3]])
    print(line(header))
    print("-" * (sum(widths) + 6 + len("result")))
    for row in rows:
        print(line(row))
    for name, entry in figures.items():
        if "error" in entry:
            print(f"{name}: {entry['error']}")
    return rows


def load_average():
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few rounds (a smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    sizes = {key: value[1 if args.quick else 0] for key, value in SIZES.items()}
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average at start: {load_average()}")
    print(f"best of {sizes['rounds']} rounds of {sizes['awaits']} awaits each\n")
    figures = asyncio.run(measure(sizes))
    parallel.shutdown()
    rows = print_table(figures)
    print(f"\nload average at end: {load_average()}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"sizes": sizes, "figures": figures,
                       "ratios": [dict(zip(("title", "value", "target", "result"), r))
                                  for r in rows if r[0].startswith("  ours /")]},
                      f, indent=2)
    failed = [name for name, entry in figures.items() if "error" in entry and name != BLOCKING]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
