"""PNG export renders the HTML export in Debian's headless Chromium with the network blocked."""

from __future__ import annotations

import pytest

from salience.core.errors import WorkbenchError
from salience.report.export import CHROMIUM_ENV, ExportDocument, ExportPane, to_html, to_png

CELLS = [
    {
        "id": 0,
        "text": "",
        "start": 0,
        "end": 0,
        "output": False,
        "score": 0.5,
        "value": 0.5,
        "selected": False,
    },
    {
        "id": 1,
        "text": "Likes cheese.",
        "start": 0,
        "end": 13,
        "output": False,
        "score": 1.0,
        "value": 1.0,
        "selected": False,
    },
    {
        "id": 2,
        "text": " Avoid.",
        "start": 13,
        "end": 20,
        "output": True,
        "score": 0.0,
        "value": 0.0,
        "selected": True,
    },
]


def test_png_of_the_html_export(browser):
    document = ExportDocument(
        "One pane",
        "Explaining “Avoid.” · Grad L2 · words · test",
        [ExportPane("variant", "Explaining “Avoid.”", CELLS)],
        signed=False,
        scale=1.0,
    )
    png = to_png(to_html(document), width=600)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_png_without_chromium_says_what_to_do(monkeypatch):
    monkeypatch.setenv(CHROMIUM_ENV, "/nonexistent/chromium")
    with pytest.raises(WorkbenchError, match="setup.sh"):
        to_png("<p>x</p>")


HUNG_PAGE = "<p>before</p><script>while (true) {}</script><p>never</p>"


def test_a_hung_page_ends_at_the_timeout(browser, monkeypatch):
    """A page whose script never returns: Playwright's own timeouts end the export on time (the
    old ThreadPoolExecutor block waited for the hung Chromium thread whatever the timeout said)."""
    import time

    from salience.report import export

    monkeypatch.setattr(export, "PNG_TIMEOUT_SECONDS", 4)
    began = time.monotonic()
    with pytest.raises(WorkbenchError, match="took over 4 s"):
        to_png(HUNG_PAGE, width=400)
    assert time.monotonic() - began < 4 + export.PNG_CLOSE_SECONDS


def test_a_hung_browser_launch_ends_at_the_timeout(tmp_path, monkeypatch):
    import time

    from salience.report import export

    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexec sleep 600\n")
    fake.chmod(0o755)
    monkeypatch.setenv(CHROMIUM_ENV, str(fake))
    monkeypatch.setattr(export, "PNG_TIMEOUT_SECONDS", 3)
    began = time.monotonic()
    with pytest.raises(WorkbenchError, match="took over 3 s"):
        to_png("<p>x</p>")
    assert time.monotonic() - began < 3 + export.PNG_CLOSE_SECONDS
