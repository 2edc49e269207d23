"""Smoke tests of bench/bench_core.py, bench/bench_async.py, bench/bench_strand.py
and bench/soak.py: they run end to end.

No timing is asserted (the machine is shared and noisy); only that every
measurement ran for this project and ThreadPoolExecutor and was reported.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "bench", "bench_core.py")
MEASUREMENT_NAMES = ("throughput", "makespan", "memory per queued task", "latency",
                     "open, one task, close")
MEASURED_LIBRARIES = ("pylateral (ours)", "ThreadPoolExecutor")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One `--quick --skip-published` run: (completed process, JSON figures)."""
    json_path = tmp_path_factory.mktemp("bench") / "figures.json"
    proc = subprocess.run(
        [sys.executable, BENCH, "--quick", "--skip-published", "--json", str(json_path)],
        capture_output=True, text=True, timeout=180)
    data = json.loads(json_path.read_text()) if json_path.exists() else None
    return proc, data


def test_quick_run_exits_zero(quick_run):
    proc, _ = quick_run
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_table_has_header_and_a_verdict_for_each_measurement(quick_run):
    proc, _ = quick_run
    lines = proc.stdout.splitlines()
    header = [line for line in lines if line.startswith("measurement")]
    assert header, proc.stdout
    for column in MEASURED_LIBRARIES + ("target", "result"):
        assert column in header[0]
    for name in MEASUREMENT_NAMES:
        verdicts = [line for line in lines
                    if name in line and line.rstrip().endswith(("PASS", "MISS"))]
        assert verdicts, f"no PASS/MISS row for {name!r} in:\n{proc.stdout}"
    assert "error" not in proc.stdout, proc.stdout


def test_json_holds_a_figure_per_measurement_and_library(quick_run):
    proc, data = quick_run
    assert data is not None, proc.stdout + proc.stderr
    measured = {(f["measurement"], f["library"]) for f in data["figures"]
                if "error" not in f and f["value"] > 0}
    for name in MEASUREMENT_NAMES:
        for library in MEASURED_LIBRARIES:
            assert (name, library) in measured, (name, library)
    assert data["cpu_count"] == os.cpu_count()


def test_soak_runs_a_few_seconds_clean():
    # bench/soak.py checks every result itself and exits non-zero on a wrong
    # one, an unexpected error or a thread that was not given back.
    soak = os.path.join(os.path.dirname(BENCH), "soak.py")
    proc = subprocess.run([sys.executable, soak, "--minutes", "0.05", "--report-every", "1"],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "wrong results = 0, errors unexpected = 0" in proc.stdout, proc.stdout


def test_soak_refuses_a_bad_duration():
    soak = os.path.join(os.path.dirname(BENCH), "soak.py")
    proc = subprocess.run([sys.executable, soak, "--minutes", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--minutes" in proc.stderr, proc.stderr


def test_bench_async_quick_run_reports_every_contender_and_ratio(tmp_path):
    bench = os.path.join(os.path.dirname(BENCH), "bench_async.py")
    json_path = tmp_path / "async.json"
    proc = subprocess.run([sys.executable, bench, "--quick", "--json", str(json_path)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in proc.stdout, proc.stdout
    lines = proc.stdout.splitlines()
    for contender in ("await parallel.async_par", "gather(run_in_executor(None, f))",
                      "gather(asyncio.to_thread(f))", "parallel.par (blocks the loop)"):
        assert any(line.startswith(contender) for line in lines), proc.stdout
    ratios = [line for line in lines if line.startswith("  ours / ")]
    assert len(ratios) == 2 and all(line.endswith(("PASS", "MISS")) for line in ratios)
    figures = json.loads(json_path.read_text())["figures"]
    assert all(entry["best"] > 0 for entry in figures.values()), figures


def test_bench_strand_quick_run_reports_every_row(tmp_path):
    # --skip-huey: huey lives in a virtualenv of its own, not in the test one
    bench = os.path.join(os.path.dirname(BENCH), "bench_strand.py")
    json_path = tmp_path / "strand.json"
    proc = subprocess.run([sys.executable, bench, "--quick", "--skip-huey", "--json",
                           str(json_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in proc.stdout, proc.stdout
    lines = proc.stdout.splitlines()
    backends = ["sqlite"] + (["redis"] if shutil.which("redis-server") else [])
    for backend in backends:
        for name in ("drain, 8-way", "drain, strand / huey", "latency p50", "latency p99",
                     "makespan"):
            assert any(f"{backend}: {name}" in line for line in lines), proc.stdout
    for line in lines:
        if ": latency p50" in line or ": makespan 20 ms" in line:
            assert line.rstrip().endswith(("PASS", "MISS")), line
    figures = json.loads(json_path.read_text())["figures"]
    measured = {(f["kind"], f["backend"]) for f in figures
                if f["library"] == "strand" and "error" not in f}
    assert measured == {(kind, backend) for kind in ("drain", "latency", "makespan")
                        for backend in backends}


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.skipif(bool(os.environ.get("LATERAL_SANITIZED")),  # set by scripts/asan_tests.sh
                    reason="valgrind cannot run a process that preloads ASan")
def test_callgrind_mode_counts_instructions_per_task():
    proc = subprocess.run([sys.executable, BENCH, "--callgrind", "--quick"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = {}
    for line in proc.stdout.splitlines()[1:]:
        name, figure = line[:26].strip(), line[26:].split()[0]
        counts[name] = float(figure.replace(",", ""))
    assert set(counts) == {"pylateral (ours)", "ThreadPoolExecutor", "plain call (the floor)"}
    # Not a timing: instruction counts.  A task costs more than the plain
    # call it makes, and ThreadPoolExecutor's futures cost far more.
    assert counts["plain call (the floor)"] < counts["pylateral (ours)"]
    assert counts["pylateral (ours)"] < counts["ThreadPoolExecutor"]
    assert " PASS" in proc.stdout or " MISS" in proc.stdout
