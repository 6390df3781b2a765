"""Work belongs to a browser session: Deletion runs of a session that ended, or of a page it left,
stop (or never start); shared work without a session always counts as wanted."""

from __future__ import annotations

import threading
import time

import pytest

from components import deletion_jobs as deletion
from components import session_work
from components.deletion_jobs import DeletionJob, DeletionRunner
from salience.core.errors import CancelledError

ENDED = "session-that-closed"


@pytest.fixture
def sessions(monkeypatch):
    """Pretend to be a server on which the session ENDED has gone away (others are connected)."""
    monkeypatch.setattr(deletion, "session_alive", lambda session: session != ENDED)
    return monkeypatch


def _as_session(monkeypatch, session: str | None, page: str | None = "page-a") -> None:
    monkeypatch.setattr(deletion, "session_id", lambda: session)
    monkeypatch.setattr(deletion, "page_id", lambda: page)


def _waits(started: threading.Event | None = None):
    def compute(progress, cancelled):
        if started is not None:
            started.set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if cancelled():
                raise CancelledError("stopped")
            time.sleep(0.01)
        return "finished"

    return compute


def test_outside_a_server_work_is_always_wanted():
    assert session_work.session_id() is None
    check = session_work.stop_check()
    assert check() is False
    assert session_work.stop_check(lambda: True)() is True
    assert session_work.session_alive(None) and session_work.session_alive("any id")


def test_a_queued_run_of_an_ended_session_never_starts(sessions):
    runner = DeletionRunner()
    blocker_started = threading.Event()
    _as_session(sessions, "alive")
    first = runner.request("alive-owner", ("k", 1), _waits(blocker_started))  # holds the one worker
    assert blocker_started.wait(10)
    _as_session(sessions, ENDED)
    computed = threading.Event()

    def never(progress, cancelled):
        computed.set()
        return "computed"

    queued = runner.request("ended-owner", ("k", 2), never)
    first.cancel.set()
    assert isinstance(queued.future.exception(timeout=10), CancelledError)
    assert not computed.is_set()
    assert queued.error is None  # nobody is there to read it; it is no failure either


def test_a_running_run_stops_once_its_session_ends(sessions):
    runner = DeletionRunner()
    _as_session(sessions, "will-close")
    started = threading.Event()
    job = runner.request("owner", ("k", 3), _waits(started))
    assert started.wait(10)
    assert job.session == "will-close" and not job.cancelled()
    sessions.setattr(deletion, "session_alive", lambda session: session not in (ENDED, "will-close"))
    assert isinstance(job.future.exception(timeout=10), CancelledError)


def test_leaving_a_page_stops_its_runs_and_its_panes_runs_only(sessions):
    runner = DeletionRunner()
    _as_session(sessions, "s1", page="compare")
    pane = runner.request("owner::pane-1", ("k", 4), _waits())
    _as_session(sessions, "s1", page="workbench")
    here = DeletionJob(("k", 5), "s1", "workbench")
    runner._jobs["owner"] = here  # a run of the page the session is on now
    other_session = runner.request("someone-else::pane-1", ("k", 6), _waits())
    runner.cancel_elsewhere("owner", "workbench")
    assert pane.cancel.is_set()
    assert not here.cancel.is_set()
    assert not other_session.cancel.is_set()
    other_session.cancel.set()
    assert isinstance(pane.future.exception(timeout=10), CancelledError)


def test_finished_runs_of_ended_sessions_are_forgotten(sessions):
    runner = DeletionRunner()
    _as_session(sessions, ENDED)
    done = runner.request("gone-owner", ("k", 7), lambda progress, cancelled: "x")
    assert isinstance(done.future.exception(timeout=10), CancelledError)  # ended before it started
    _as_session(sessions, "alive")
    runner.request("alive-owner", ("k", 8), lambda progress, cancelled: "y").future.result(timeout=10)
    assert runner.job("gone-owner") is None
    assert runner.job("alive-owner") is not None
