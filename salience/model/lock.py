"""The model's lock: one model call at a time, a click before background work, first come first served.

Every call into a loaded model (a generation step, a click's salience pass, one batch of
Deletion) holds the model's lock. A plain lock wakes waiters in no particular order, so a
reviewer's click could wait behind several other sessions' background Deletion batches. This
lock keeps two queues in arrival order: calls made in the foreground (a page's own script
thread: a generation, the first colours after a click) and calls marked as background work
(`background_work()`: the Deletion check that follows a click). A waiting foreground call goes
before every waiting background call; within each queue the first to ask is the first served, so
several sessions' Deletions take turns batch by batch. Like `threading.RLock`, a thread that
holds the lock may take it again.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator

FOREGROUND, BACKGROUND = 0, 1

_thread = threading.local()


@contextlib.contextmanager
def background_work() -> Iterator[None]:
    """Mark the model calls this thread makes inside the block as background work.

    Example:
        >>> with background_work():
        ...     pass  # model.salience(..., methods=("deletion",)) here waits for any waiting click
    """
    before = getattr(_thread, "rank", FOREGROUND)
    _thread.rank = BACKGROUND
    try:
        yield
    finally:
        _thread.rank = before


def current_rank() -> int:
    """FOREGROUND, or BACKGROUND inside `background_work()` on this thread."""
    return getattr(_thread, "rank", FOREGROUND)


class ModelLock:
    """A re-entrant lock that serves waiting foreground calls first, each queue in arrival order."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._tickets = itertools.count()
        self._waiting: list[tuple[int, int]] = []  # (rank, ticket), kept sorted

    def acquire(self) -> bool:
        """Take the lock (again, if this thread holds it); waits its turn otherwise."""
        me = threading.get_ident()
        with self._condition:
            if self._owner == me:
                self._depth += 1
                return True
            turn = (current_rank(), next(self._tickets))
            self._waiting.append(turn)
            self._waiting.sort()
            try:
                while self._owner is not None or self._waiting[0] != turn:
                    self._condition.wait()
            finally:
                self._waiting.remove(turn)
                self._condition.notify_all()  # the next in line re-checks (also after an interrupt)
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        """Give the lock back (the last of a thread's nested holds frees it)."""
        with self._condition:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a model lock this thread does not hold")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._condition.notify_all()

    def waiting(self) -> tuple[int, int]:
        """How many calls wait now: (foreground, background)."""
        with self._condition:
            ranks = [rank for rank, _ in self._waiting]
        return ranks.count(FOREGROUND), ranks.count(BACKGROUND)

    def __enter__(self) -> ModelLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()
