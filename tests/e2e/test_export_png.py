"""PNG export renders the HTML export in Debian's headless Chromium with the network blocked."""

from __future__ import annotations

import pytest

from salience.errors import WorkbenchError
from salience.export import CHROMIUM_ENV, ExportDocument, ExportPane, to_html, to_png

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
