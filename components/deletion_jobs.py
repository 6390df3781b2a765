"""The process-wide Deletion runner: background runs on a bounded pool, one per browser session.

Deletion (one model pass per prompt segment) runs on worker threads owned by `DeletionRunner`,
a process-wide object like the model registry (`runner()` owns the one instance). Its model
calls are background work (`salience.model.lock.background_work`): a click waiting for the
model goes before them, and several sessions' Deletions take turns batch by batch. Each browser
session owns at most one run: asking for other inputs cancels the old run between two of its
batches. Finished results are cached by the same kind of key as ``ModelRegistry.salience`` plus
the token spans that were deleted.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import streamlit as st

from components import state
from components.session_work import page_id, session_alive, session_id
from salience.core.errors import CancelledError, WorkbenchError
from salience.core.types import SalienceResult
from salience.model.lock import background_work

KEPT_RESULTS = 128
# At most this many sessions' Deletions run at once (taking turns on the model batch by batch);
# more wait for a worker. Each session has at most one run, so one session cannot fill the pool.
DELETION_WORKERS = 4


# ---- the background runner ---------------------------------------------------------------
@dataclass
class DeletionJob:
    """One Deletion run: its inputs' key, progress and the future of its `SalienceResult`.

    It belongs to the browser session that asked for it (``session``) and to the page that
    session was on (``page``): it stops once that session ends, or when it is cancelled (a new
    click, another page), from any state including still queued."""

    key: tuple
    session: str | None = None
    page: str | None = None
    future: Future = field(default_factory=Future)
    cancel: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    total: int = 0
    began: float = field(default_factory=time.perf_counter)

    def cancelled(self) -> bool:
        """True once nobody wants the answer: cancelled, or its session has ended."""
        return self.cancel.is_set() or not session_alive(self.session)

    @property
    def error(self) -> str | None:
        """The message of a run that failed (not one that was cancelled)."""
        if not self.future.done() or self.future.cancelled():
            return None
        error = self.future.exception()
        if error is None or isinstance(error, CancelledError):
            return None
        return str(error) if isinstance(error, WorkbenchError) else f"Deletion failed: {error}"


class DeletionRunner:
    """A bounded pool of worker threads for Deletion runs, at most one run per owner (browser
    session), and a cache of finished results."""

    def __init__(self, workers: int = DELETION_WORKERS) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deletion")
        self._lock = threading.Lock()
        self._jobs: dict[str, DeletionJob] = {}
        self._results: OrderedDict[tuple, SalienceResult] = OrderedDict()

    def cached(self, key: tuple) -> SalienceResult | None:
        with self._lock:
            return self._results.get(key)

    def job(self, owner: str) -> DeletionJob | None:
        with self._lock:
            return self._jobs.get(owner)

    def cancel_elsewhere(self, owner: str, page: str | None) -> None:
        """Cancel the owner's unfinished runs (its own and its panes', ``owner::…``) that were
        started on another page than ``page``: a page that is left stops its work."""
        with self._lock:
            jobs = [job for name, job in self._jobs.items() if name.split("::")[0] == owner]
        for job in jobs:
            if not job.future.done() and job.page != page:
                job.cancel.set()

    def cancel_unless(self, owner: str, keep: Callable[[tuple], bool]) -> None:
        """Cancel the owner's unfinished run unless ``keep(its key)``: called before a click's
        gradients, so a stale Deletion lets go of the model after its current batch."""
        with self._lock:
            job = self._jobs.get(owner)
        if job is not None and not job.future.done() and not keep(job.key):
            job.cancel.set()

    def request(
        self, owner: str, key: tuple, compute: Callable[..., SalienceResult]
    ) -> SalienceResult | DeletionJob:
        """The cached result for ``key``, or the owner's run for it (started, replacing any other).

        ``compute(progress, cancelled)`` runs on the worker thread.
        """
        hit = self.cached(key)
        with self._lock:
            self._forget_ended()
            current = self._jobs.get(owner)
            if hit is not None:
                if current is not None and current.key != key:
                    current.cancel.set()
                return hit
            if current is not None and current.key == key and not current.cancel.is_set():
                return current
            if current is not None:
                current.cancel.set()
            job = DeletionJob(key, session_id(), page_id())
            self._jobs[owner] = job
        self._executor.submit(self._run, job, compute)
        return job

    def _run(self, job: DeletionJob, compute: Callable[..., SalienceResult]) -> None:
        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        try:
            if job.cancelled():
                raise CancelledError("Deletion was cancelled before it started.")
            with background_work():  # a click waiting for the model goes first
                result = compute(progress, job.cancelled)
        except BaseException as error:  # noqa: BLE001 - handed to the page through the future
            job.future.set_exception(error)
            return
        self.remember(job.key, result)
        job.future.set_result(result)

    def _forget_ended(self) -> None:
        """Drop the finished runs of sessions that have ended (called with the lock held)."""
        for name in [
            n for n, job in self._jobs.items() if job.future.done() and not session_alive(job.session)
        ]:
            del self._jobs[name]

    def remember(self, key: tuple, result: SalienceResult) -> SalienceResult:
        with self._lock:
            self._results[key] = result
            while len(self._results) > KEPT_RESULTS:
                self._results.popitem(last=False)
        return result


_RUNNER: DeletionRunner | None = None
_RUNNER_LOCK = threading.Lock()


def runner() -> DeletionRunner:
    """The process-wide runner shared by every browser session."""
    global _RUNNER
    with _RUNNER_LOCK:
        if _RUNNER is None:
            _RUNNER = DeletionRunner()
        return _RUNNER


def session_owner() -> str:
    """This browser session's name as the owner of its Deletion runs (made on first use)."""
    if not st.session_state.get(state.DELETION_OWNER):
        st.session_state[state.DELETION_OWNER] = uuid.uuid4().hex
    return st.session_state[state.DELETION_OWNER]


def stop_other_pages() -> None:
    """Call once the page of this script run is known: this session's Deletion runs started on
    another page stop (a page that is left keeps no work running)."""
    owner = st.session_state.get(state.DELETION_OWNER)
    if owner:
        runner().cancel_elsewhere(owner, page_id())
