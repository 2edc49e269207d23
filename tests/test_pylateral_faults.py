"""pylateral under process-level faults: Ctrl-C, fork, sys.exit in a task and
interpreter exit with tasks running.  Each scenario runs in a fresh
interpreter so that a hang or a crash fails one test instead of the run."""
import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from pylateral_support import child_env, run_child

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and fork"),
]

#: Seconds a child may take; a healthy one needs well under one.
DEADLINE = 40


def child_code(body):
    """``body`` as a script: dedented, ending with a newline."""
    return textwrap.dedent(body).strip() + "\n"


def report_of(completed):
    """The JSON line the child printed last (its stderr shown on failure)."""
    assert completed.stdout.strip(), completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


SIGINT_CHILD = child_code("""
    import json, os, signal, sys, threading, time
    import pylateral

    started = threading.Semaphore(0)
    ran = []

    @pylateral.task
    def busy(i):
        ran.append(i)
        started.release()
        while True:
            {loop_body}

    def all_running_then(action):
        for _ in range(2):
            started.acquire()
        action()

    {setup}
    outcome = "no interrupt"
    try:
        with pylateral.task_pool(max_workers=2):
            for i in range(50):
                busy(i)
    except KeyboardInterrupt:
        outcome = "KeyboardInterrupt"
    interrupted_after = time.monotonic() - signalled_at[0]
    print(json.dumps({{
        "outcome": outcome,
        "ran": len(ran),
        "seconds": interrupted_after,
        "threads": [t.name for t in threading.enumerate() if t.name.startswith("pylateral-")],
    }}))
""")


def test_sigint_from_the_parent_interrupts_pool_exit():
    code = SIGINT_CHILD.format(loop_body="time.sleep(0.01)", setup="""
signalled_at = [None]
def announce():
    print("ready", flush=True)
    signalled_at[0] = time.monotonic()
threading.Thread(target=all_running_then, args=(announce,), daemon=True).start()
""")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_env())
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)  # let the main thread settle into its wait in pool exit
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=DEADLINE)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["outcome"] == "KeyboardInterrupt"
    assert report["ran"] == 2  # the 48 queued tasks were dropped
    assert report["threads"] == []
    assert report["seconds"] < DEADLINE / 2


def test_sigint_from_a_thread_interrupts_pool_exit_while_workers_spin():
    code = SIGINT_CHILD.format(loop_body="pass", setup="""
signalled_at = [None]
def interrupt():
    time.sleep(0.2)
    signalled_at[0] = time.monotonic()
    os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=all_running_then, args=(interrupt,), daemon=True).start()
""")
    completed = run_child(code, timeout=DEADLINE)
    assert completed.returncode == 0, completed.stderr
    report = report_of(completed)
    assert report["outcome"] == "KeyboardInterrupt"
    assert report["ran"] == 2
    assert report["threads"] == []
    assert report["seconds"] < DEADLINE / 2


FORK_CHILD = child_code("""
    import json, os, sys, threading, time
    import pylateral

    @pylateral.task(has_return_value=True)
    def square(x):
        time.sleep(0.001)
        return x * x

    def in_forked_child():
        report = {}
        try:
            square(1)
            report["task call"] = "no error"
        except pylateral.PoolForkedError as exc:
            report["task call"] = "PoolForkedError: " + str(exc)
        try:
            pylateral.join()
            report["join"] = "no error"
        except pylateral.PoolForkedError:
            report["join"] = "PoolForkedError"
        with pylateral.task_pool(max_workers=2) as own_pool:
            for x in range(10):
                square(x)
        report["own pool"] = sorted(own_pool.return_values())
        return report

    with pylateral.task_pool(max_workers=2) as pool:
        for x in range(300):
            square(x)  # tasks are queued and running while we fork
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                print(json.dumps({"child": in_forked_child()}), flush=True)
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        for x in range(300, 310):
            square(x)
    print(json.dumps({
        "child exit": os.waitstatus_to_exitcode(status),
        "parent values": sorted(pool.return_values()),
    }))
""")


def test_fork_with_an_open_pool():
    completed = run_child(FORK_CHILD, timeout=DEADLINE)
    assert completed.returncode == 0, completed.stderr
    lines = [json.loads(line) for line in completed.stdout.splitlines()]
    child = next(line["child"] for line in lines if "child" in line)
    parent = lines[-1]
    assert child["task call"].startswith("PoolForkedError: ")
    assert "fork" in child["task call"]
    assert child["join"] == "PoolForkedError"
    assert child["own pool"] == [x * x for x in range(10)]
    assert parent["child exit"] == 0
    assert parent["parent values"] == [x * x for x in range(310)]


def test_forked_child_can_leave_the_inherited_with_block():
    completed = run_child(child_code("""
        import os, time
        import pylateral

        @pylateral.task
        def work():
            time.sleep(0.01)

        with pylateral.task_pool(max_workers=2):
            for _ in range(20):
                work()
            pid = os.fork()
        if pid == 0:
            print("child left the with block", flush=True)
            os._exit(0)
        print("child exit", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    """), timeout=DEADLINE)
    assert completed.returncode == 0, completed.stderr
    assert "child left the with block" in completed.stdout
    assert "child exit 0" in completed.stdout


def test_sys_exit_in_a_task_exits_the_process_with_its_code():
    completed = run_child(child_code("""
        import sys, time
        import pylateral

        @pylateral.task
        def quit_with_3():
            sys.exit(3)

        @pylateral.task
        def slow():
            time.sleep(0.02)

        with pylateral.task_pool(max_workers=2):
            slow()
            quit_with_3()
            for _ in range(20):
                slow()
        print("after the pool")
    """), timeout=DEADLINE)
    assert completed.returncode == 3, completed.stderr
    assert "Fatal Python error" not in completed.stderr
    assert "after the pool" not in completed.stdout


def test_interpreter_exit_with_tasks_still_running():
    completed = run_child(child_code("""
        import threading, time
        import pylateral

        @pylateral.task
        def sleeps_forever():
            while True:
                time.sleep(0.01)

        @pylateral.task
        def spins_forever():
            while True:
                pass

        pool = pylateral.task_pool(max_workers=3)
        pool.__enter__()  # never exited
        sleeps_forever()
        spins_forever()
        sleeps_forever()
        for _ in range(10):
            sleeps_forever()  # queued
        time.sleep(0.2)
        print("leaving with", len([t for t in threading.enumerate()
                                   if t.name.startswith("pylateral-")]), "workers")
    """), timeout=DEADLINE)
    assert completed.returncode == 0, completed.stderr
    assert "leaving with 3 workers" in completed.stdout
    assert "Fatal Python error" not in completed.stderr
    assert completed.stderr == ""
