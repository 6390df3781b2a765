"""The model's lock: a waiting click goes before background Deletion batches, each queue in order."""

from __future__ import annotations

import threading
import time

import pytest

from salience.model.lock import BACKGROUND, FOREGROUND, ModelLock, background_work, current_rank


def _wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _queue_up(lock: ModelLock, name: str, background: bool, order: list[str]) -> threading.Thread:
    """Start a thread that waits for ``lock`` and records ``name`` when it gets it."""

    def work() -> None:
        if background:
            with background_work(), lock:
                order.append(name)
        else:
            with lock:
                order.append(name)

    before = lock.waiting()
    thread = threading.Thread(target=work)
    thread.start()
    _wait_until(lambda: sum(lock.waiting()) == sum(before) + 1)  # queued in this order
    return thread


def test_a_waiting_click_goes_before_background_work_and_each_queue_keeps_its_order():
    lock = ModelLock()
    order: list[str] = []
    lock.acquire()  # a Deletion batch is running
    threads = [
        _queue_up(lock, "deletion A", True, order),
        _queue_up(lock, "deletion B", True, order),
        _queue_up(lock, "click 1", False, order),
        _queue_up(lock, "deletion C", True, order),
        _queue_up(lock, "click 2", False, order),
    ]
    assert lock.waiting() == (2, 3)
    lock.release()
    for thread in threads:
        thread.join(5)
    assert order == ["click 1", "click 2", "deletion A", "deletion B", "deletion C"]
    assert lock.waiting() == (0, 0)


def test_the_lock_is_reentrant_and_only_its_holder_releases_it():
    lock = ModelLock()
    with lock, lock:  # a model call that makes another (as with threading.RLock)
        errors: list[Exception] = []

        def release_elsewhere() -> None:
            try:
                lock.release()
            except RuntimeError as error:
                errors.append(error)

        thread = threading.Thread(target=release_elsewhere)
        thread.start()
        thread.join(5)
        assert errors and "does not hold" in str(errors[0])
    got = threading.Event()
    threading.Thread(target=lambda: (lock.acquire(), got.set(), lock.release())).start()
    assert got.wait(5), "the lock was not free after the last nested release"


def test_background_work_marks_only_its_own_thread_and_block():
    seen: list[int] = []
    with background_work():
        seen.append(current_rank())
        other = threading.Thread(target=lambda: seen.append(current_rank()))
        other.start()
        other.join(5)
    seen.append(current_rank())
    assert seen == [BACKGROUND, FOREGROUND, FOREGROUND]


def test_an_interrupted_waiter_leaves_the_queue():
    lock = ModelLock()
    lock.acquire()
    stop = threading.Event()
    original_wait = lock._condition.wait

    def wait_or_interrupt(timeout=None):
        if stop.is_set():
            raise KeyboardInterrupt  # what Streamlit's stop does to a waiting script thread, in spirit
        return original_wait(0.01)

    lock._condition.wait = wait_or_interrupt
    caught: list[BaseException] = []

    def waiter() -> None:
        try:
            lock.acquire()
        except KeyboardInterrupt as error:
            caught.append(error)

    thread = threading.Thread(target=waiter)
    thread.start()
    _wait_until(lambda: lock.waiting() == (1, 0))
    stop.set()
    thread.join(5)
    assert caught and lock.waiting() == (0, 0)
    lock._condition.wait = original_wait
    lock.release()
    with lock:  # free again
        pass


@pytest.mark.parametrize("workers", [1, 4])
def test_deletion_runner_runs_its_work_in_the_background_queue(workers):
    from components.deletion import DeletionRunner

    runner = DeletionRunner(workers)
    job = runner.request("owner", ("key",), lambda progress, cancelled: current_rank())
    assert job.future.result(5) == BACKGROUND
