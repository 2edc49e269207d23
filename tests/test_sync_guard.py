"""_lateral_sync.Guard: the lock and waits that parallel's runs on futures
and strand's reader, writer, stores and dispatcher share between the
program's thread (where Ctrl-C lands) and their own threads."""
import signal
import threading

import pytest

import _lateral_sync
from common_support import PATIENCE, HandlerRaised


def test_a_wait_ends_when_another_thread_makes_its_condition_true():
    guard = _lateral_sync.Guard()
    state = {"ready": False}
    waiting = threading.Event()

    def make_ready():
        waiting.wait(PATIENCE)
        guard.call(_set_ready, guard, state)

    maker = threading.Thread(target=make_ready)
    maker.start()

    def ready():
        waiting.set()  # checked under the lock: the maker's section waits for it
        return state["ready"]

    assert guard.wait_for(ready, PATIENCE) is True
    maker.join(PATIENCE)


def _set_ready(guard, state):
    state["ready"] = True
    guard.notify_all()


def test_a_wait_that_times_out_returns_false_and_leaves_nothing_behind():
    guard = _lateral_sync.Guard()
    for _ in range(50):  # a caller polling must not pile up sleepers
        assert guard.wait_for(lambda: False, 0.001) is False
    assert guard.wait_for(lambda: False, -1) is False
    assert guard.call(len, guard._sleepers) == 0
    assert guard.wait_for(lambda: True, 0) is True


def test_sleep_unless_sleeps_once_until_the_next_notify():
    guard = _lateral_sync.Guard()
    assert guard.sleep_unless(lambda: True) is True

    def notify_once_asleep():
        while not guard.call(len, guard._sleepers):
            threading.Event().wait(0.001)
        guard.wake_all()

    notifier = threading.Thread(target=notify_once_asleep)
    notifier.start()
    assert guard.sleep_unless(lambda: False) is False  # woken, not true
    notifier.join(PATIENCE)
    assert guard.sleep_unless(lambda: False, 0.001) is False  # timed out
    assert guard.call(len, guard._sleepers) == 0


def test_a_reentrant_guard_lets_a_section_call_it_again():
    guard = _lateral_sync.Guard(reentrant=True)
    assert guard.call(guard.call, lambda: "nested") == "nested"


def test_a_condition_that_raises_ends_the_wait_with_the_lock_free():
    guard = _lateral_sync.Guard()

    def broken():
        raise ValueError("no such state")

    with pytest.raises(ValueError, match="no such state"):
        guard.wait_for(broken)
    assert guard.call(lambda: "the lock is free") == "the lock is free"


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_an_interrupted_wait_leaves_the_lock_to_the_thread_holding_it():
    # threading.Condition.wait takes its lock again on the way out, with an
    # acquire that a raising handler interrupts: the wait ends without the
    # lock, and the caller's release frees the lock another thread holds.
    # Its section then fails, and two threads can be inside at once.
    guard = _lateral_sync.Guard()
    waits = {_lateral_sync.__file__, threading.__file__}
    caught = threading.Event()
    errors = []

    def handler(signum, frame):
        if frame is not None and frame.f_code.co_filename in waits:
            raise HandlerRaised("Ctrl-C during the wait")

    def hold_and_interrupt():
        # Once the main thread sleeps in the wait, hold the lock and
        # interrupt the wait until the interrupt has reached the test.
        try:
            while not guard.call(len, guard._sleepers):
                if caught.wait(0.001):
                    return
            guard.call(_interrupt_main_until, caught)
        except BaseException as exc:
            errors.append(exc)

    previous = signal.signal(signal.SIGUSR1, handler)
    holder = threading.Thread(target=hold_and_interrupt)
    try:
        holder.start()
        with pytest.raises(HandlerRaised):
            guard.wait_for(lambda: False)
        caught.set()
        holder.join(PATIENCE)
    finally:
        caught.set()
        holder.join(PATIENCE)
        signal.signal(signal.SIGUSR1, previous)
    assert not holder.is_alive()
    assert errors == []
    assert guard.call(lambda: "the lock is free") == "the lock is free"


def _interrupt_main_until(caught):
    for _ in range(int(PATIENCE / 0.01)):
        if caught.is_set():
            return
        signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
        caught.wait(0.01)
