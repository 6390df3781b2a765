"""Know when Streamlit has finished a rerun, from what its server tells the page.

Streamlit's "running" indicator (``stStatusWidget``) is no idle signal: it appears only after a
run has lasted 500 ms, and a click's rerun starts only when the server gets to it (seconds later
on a loaded machine). A test that waits a fixed time and then looks for the indicator goes on
while the rerun is still coming. Instead, every page a browser test opens is tracked
(``track``): each message the server sends on the page's websocket is read, so a test knows how
many runs have started and finished and whether one is in progress, and can wait for the run its
own click started (``rerun_after``) or for the page to be quiet (``wait_quiet``).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable

from playwright.sync_api import Browser, BrowserContext, Locator, Page, WebSocket
from playwright.sync_api import Error as PlaywrightError
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

QUIET_S = 0.6  # no run in progress and none started for this long: the page is settled
# The browser has rendered what the server sent (not only received it), and is connected.
_PAGE_IDLE = """() => {
  const app = document.querySelector('[data-testid=stApp]');
  return !!app && app.dataset.testScriptState === 'notRunning'
    && app.dataset.testConnectionState === 'CONNECTED';
}"""


class Runs:
    """What the server said about script runs on one page (across reloads and reconnects)."""

    def __init__(self) -> None:
        self.started = 0
        self.finished = 0
        self.requested = 0  # rerun requests the page sent (a click, Enter, a component's value)
        self.answered = 0  # requests sent before the latest run started
        self.timer_asked = False  # a fragment's timer (run_every) asked for a run
        self.timer_run = False  # the run in progress is such a timer's
        self.running = False
        self.connected = False
        self.changed = time.monotonic()

    def _mark(self) -> None:
        self.changed = time.monotonic()

    def socket(self, ws: WebSocket) -> None:
        if "/_stcore/stream" not in ws.url:
            return
        self.connected, self.running = True, False
        self.answered = self.requested  # a new page load or connection: earlier requests are moot
        self.timer_asked = self.timer_run = False
        self._mark()
        ws.on("framereceived", self._frame)
        ws.on("framesent", self._sent)
        ws.on("close", lambda _ws: self._closed())

    def _closed(self) -> None:
        self.connected = False
        self._mark()

    def _sent(self, payload: str | bytes) -> None:
        if isinstance(payload, str):
            return
        message = BackMsg()
        try:
            message.ParseFromString(payload)
        except Exception:  # noqa: BLE001 - not a message about runs
            return
        if message.WhichOneof("type") != "rerun_script":
            return
        if message.rerun_script.is_auto_rerun:  # a polling fragment: not what a test waits for
            self.timer_asked = True
        else:
            self.requested += 1
            self._mark()

    def _frame(self, payload: str | bytes) -> None:
        if isinstance(payload, str):
            return
        message = ForwardMsg()
        try:
            message.ParseFromString(payload)
        except Exception:  # noqa: BLE001 - not a message about runs
            return
        kind = message.WhichOneof("type")
        if kind == "new_session":  # every run, a fragment's too, starts with one
            self.started += 1
            self.running = True
            self.timer_run = self.timer_asked and self.answered == self.requested
            self.timer_asked = False
            self.answered = self.requested  # the server starts a run with every request so far
        elif kind == "script_finished":
            self.finished += 1
        elif kind == "session_status_changed":
            self.running = message.session_status_changed.script_is_running
        else:
            return
        if not self.timer_run:  # a polling fragment's runs do not keep the page from being quiet
            self._mark()

    def quiet_for(self) -> float:
        busy = self.running and not self.timer_run
        if busy or not self.connected or self.answered < self.requested:
            return 0.0
        return time.monotonic() - self.changed


_TRACKED: weakref.WeakKeyDictionary[Page, Runs] = weakref.WeakKeyDictionary()


def track(page: Page) -> Page:
    """Start reading the page's messages (before it opens the app); idempotent."""
    if page not in _TRACKED:
        runs = _TRACKED[page] = Runs()
        page.on("websocket", runs.socket)
    return page


def runs_of(page: Page) -> Runs:
    runs = _TRACKED.get(page)
    if runs is None:
        raise AssertionError("this page is not tracked: open it through the `browser` fixture")
    return runs


def _wait(page: Page, ready: Callable[[], bool], timeout_ms: int, what: str) -> None:
    deadline = time.monotonic() + timeout_ms / 1000
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_ms / 1000:.0f} s for {what}")
        page.wait_for_timeout(50)  # lets Playwright deliver the page's websocket messages


def wait_quiet(page: Page, timeout_ms: int) -> None:
    """Until no run is in progress, none has started for QUIET_S, and the page shows the result
    (a polling fragment's runs aside)."""
    runs = runs_of(page)
    since = time.monotonic()  # a request the page sent a moment ago may not have been read yet

    def settled() -> bool:
        if min(runs.quiet_for(), time.monotonic() - since) < QUIET_S:
            return False
        if runs.running and runs.timer_run:
            return True
        try:
            return bool(page.evaluate(_PAGE_IDLE))
        except PlaywrightError:  # the page is navigating
            return False

    _wait(page, settled, timeout_ms, "Streamlit to finish its runs")


def rerun_after(page: Page, action: Callable[[], object], timeout_ms: int) -> None:
    """Do ``action`` (a click, Enter…) and wait for the rerun it starts to finish, then for quiet."""
    before = runs_of(page).requested
    action()
    wait_rerun(page, before, timeout_ms)


def submit_form(page: Page, button: Locator, timeout_ms: int, lost_after_s: float = 15.0) -> None:
    """Submit a Streamlit form with its button and wait for the rerun it starts.

    The field typed in last is blurred first (it commits its value to the form on blur), so the
    click is the button's alone. A click that sent nothing (seen once on a loaded CI machine: no
    rerun request in 60 s) is clicked once more after ``lost_after_s``; a click that did send a
    request is never repeated, so a form is not submitted twice.
    """
    runs = runs_of(page)
    before = runs.requested
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    button.click()
    try:
        _wait(page, lambda: runs.requested > before, int(lost_after_s * 1000), "the form's request")
    except AssertionError:
        if button.is_visible():
            button.click()
    wait_rerun(page, before, timeout_ms)


def wait_rerun(page: Page, before: int, timeout_ms: int) -> None:
    """Wait until the page has asked for a rerun since it had asked ``before`` times
    (``runs_of(page).requested``), and for that rerun, and any it leads to, to finish."""
    runs = runs_of(page)
    _wait(page, lambda: runs.requested > before, timeout_ms, "the page to ask for a rerun")
    wait_quiet(page, timeout_ms)


def track_new_pages(browser: Browser) -> None:
    """Track every page this browser opens from now on (``browser.new_page``, ``new_context``)."""
    new_context, new_page = browser.new_context, browser.new_page

    def context_tracking_its_pages(*args, **kwargs) -> BrowserContext:
        context = new_context(*args, **kwargs)
        context.on("page", track)
        return context

    def tracked_page(*args, **kwargs) -> Page:
        return track(new_page(*args, **kwargs))

    browser.new_context = context_tracking_its_pages
    browser.new_page = tracked_page
