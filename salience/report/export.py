"""Exports for slides and reports: self-contained HTML, PNG, CSV and JSON.

The HTML has no script and loads nothing: colours are computed here, with the
same scale as the app's heatmap, and written as inline styles; fonts are the
reader's system fonts.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import jinja2
import pandas as pd
from markupsafe import Markup

from salience.core.errors import InputError, WorkbenchError
from salience.core.types import SalienceResult
from salience.prompts.variant_comparison import OutputDiff, PartDelta
from salience.report.palette import legend_gradient, paint
from salience.report.views import legend_words

CHROMIUM_ENV = "CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
PNG_TIMEOUT_SECONDS = 60
PNG_CLOSE_SECONDS = 10  # closing a browser whose page hung, after a step timed out


@dataclass(frozen=True)
class ExportPane:
    """One variant as exported: its heatmap cells and what it explains."""

    name: str
    subtitle: str  # e.g. "Explaining “Recommendation: Avoid.”"
    cells: list[dict]  # HeatmapView.cells()
    template: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    prompt: str = ""
    output: str = ""
    explained: str = ""
    result: SalienceResult | None = None


@dataclass(frozen=True)
class ExportDocument:
    """Everything an export shows: panes on one scale, a caption, and optional differences."""

    title: str
    caption: str  # "Explaining … · Grad L2 · sentences · Gemma 3 270M"
    panes: Sequence[ExportPane]
    signed: bool
    scale: float
    intensity: float = 1.0
    method: str = ""
    granularity: str = ""
    model: str = ""
    output_diff: OutputDiff | None = None
    diff_names: tuple[str, str] = ("A", "B")
    parts: Sequence[PartDelta] = ()


_CSS = """
:root { color-scheme: light; }
body { margin: 24px; font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
  color: #111; background: #fff; }
h1 { font-size: 1.35rem; margin: 0 0 .25rem 0; }
h2 { font-size: 1.05rem; margin: 0 0 .25rem 0; }
.caption { color: #333; margin: 0 0 .75rem 0; }
.panes { display: grid; gap: 16px; grid-template-columns: repeat(var(--columns), minmax(0, 1fr)); }
.pane { border: 1px solid #d4d4d8; border-radius: 8px; padding: 12px; }
.sub { font-size: .85rem; color: #444; margin: 0 0 .5rem 0; }
.text { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
  font-size: .85rem; line-height: 1.7; white-space: pre-wrap; word-break: break-word; }
.seg { border-radius: 3px; padding: 1px 0; }
.out { border-bottom: 2px dotted #6b7280; }
.sel { outline: 2px solid #111; background: #fde68a; }
.bos { font-size: .7rem; border: 1px dashed #999; border-radius: 3px; padding: 0 3px; margin-right: 2px; }
table { border-collapse: collapse; font-size: .85rem; margin-top: .5rem; }
th, td { border-bottom: 1px solid #e4e4e7; padding: 4px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
del { background: #fde2e2; color: #7f1d1d; }
ins { background: #dcfce7; color: #14532d; text-decoration: none; }
.diff { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: pre-wrap;
  border: 1px solid #d4d4d8; border-radius: 8px; padding: 8px; }
section { margin-top: 1.25rem; }
footer { margin-top: 1.5rem; font-size: .75rem; color: #555; }
"""


_TEMPLATES = jinja2.Environment(
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, keep_trailing_newline=True
)

_LEGEND = _TEMPLATES.from_string(
    """<div class="legend" data-testid="{{ test_id }}" style="display:flex;flex-wrap:wrap;\
align-items:flex-start;gap:.35rem 1rem;font-size:.85rem;margin-bottom:.75rem">\
<div style="display:grid;grid-template-columns:1fr 1fr;column-gap:.75rem;width:min(100%,34rem)">\
<span style="grid-column:1 / 3;height:12px;border-radius:6px;border:1px solid #999;background:{{ gradient }}"></span>\
<span style="margin-top:.15rem;line-height:1.3">← {{ low }}</span>\
<span style="margin-top:.15rem;line-height:1.3;text-align:right">{{ high }} →</span></div>\
<details style="opacity:.75;font-size:.8rem"><summary style="cursor:pointer">Details for engineers</summary>{{ note }}</details></div>"""
)

_CELLS = _TEMPLATES.from_string(
    """{% for cell in cells %}\
{% if cell.text == "" and not cell.output %}\
{% if cell.id == 0 and cell.value %}<span class="bos" style="background:{{ cell.background }}" \
title="start-of-text token">start</span>{% endif %}\
{% elif cell.output %}<span class="seg out{{ ' sel' if cell.selected }}"\
{% if cell.value and not cell.selected %} style="background:{{ cell.background }};color:{{ cell.color }}"{% endif %}\
>{{ cell.text }}</span>\
{% else %}<span class="seg" style="background:{{ cell.background }};color:{{ cell.color }}" \
title="score {{ '%.4g' % (cell.score or 0.0) }}">{{ cell.text }}</span>\
{% endif %}{% endfor %}"""
)

_PAGE = _TEMPLATES.from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">\
<title>{{ doc.title }}</title><style>{{ css }}</style></head>\
<body><header><h1>{{ doc.title }}</h1><p class="caption">{{ doc.caption }}</p>{{ legend }}</header>\
<main class="panes" style="--columns:{{ columns }}">\
{% for pane in panes %}<section class="pane"><h2>{{ pane.name }}</h2><p class="sub">{{ pane.subtitle }}</p>\
<div class="text">{{ pane.cells }}</div></section>{% endfor %}</main>\
{% if doc.output_diff is not none %}<section><h2>Output: {{ name_a }} → {{ name_b }}</h2>\
<p class="sub">{{ doc.output_diff.summary }}</p><div class="diff">\
{% for op in doc.output_diff.ops %}{% if op.op == "equal" %}{{ op.text }}\
{% elif op.op == "insert" %}<ins>{{ op.text }}</ins>{% else %}<del>{{ op.text }}</del>{% endif %}{% endfor %}\
</div></section>{% endif %}\
{% if doc.parts %}<section><h2>Scores by part: {{ name_b }} minus {{ name_a }}</h2>\
<table><thead><tr><th>part</th><th>match</th><th>{{ name_a }}</th><th>{{ name_b }}</th><th>difference</th></tr>\
</thead><tbody>{% for row in doc.parts %}<tr><td>{{ row.title }}</td><td>{{ row.status }}</td>\
<td class="num">{{ number(row.score_a) }}</td><td class="num">{{ number(row.score_b) }}</td>\
<td class="num">{{ number(row.delta) }}</td></tr>{% endfor %}</tbody></table></section>{% endif %}\
<footer>Gemma prompt workbench · {{ stamp }} · colours are comparable across panes only because they \
share one scale.</footer></body></html>
"""
)


def _cells_html(cells: Sequence[dict], signed: bool, intensity: float) -> Markup:
    return Markup(_CELLS.render(cells=paint(cells, signed, intensity)))


def legend_html(
    method: str, signed: bool, scale: float, shared: bool = False, test_id: str = "legend"
) -> str:
    """The colour legend as HTML with inline styles (for exports and ``st.html``).

    The method's words sit under the ends of the bar they describe ("← low · high →") and
    wrap within their half, never apart from their colour; the raw scale is in a "Details for engineers" ``<details>``.
    """
    try:
        low, high, note, signed = legend_words(method, scale, shared=shared)
    except InputError:  # no method named (older exports): neutral words
        low, high = ("negative score", "positive score") if signed else ("low score", "high score")
        note = f"Strongest colour = {'±' if signed else ''}{scale:.3g}"
        note += " · one scale shared by all panes" if shared else ""
    return _LEGEND.render(test_id=test_id, gradient=legend_gradient(signed), low=low, high=high, note=note)


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:+.4f}"


def to_html(document: ExportDocument) -> str:
    """A self-contained HTML page: no scripts, no external fonts, styles inline (Jinja2, autoescaped)."""
    panes = [
        {
            "name": pane.name,
            "subtitle": pane.subtitle,
            "cells": _cells_html(pane.cells, document.signed, document.intensity),
        }
        for pane in document.panes
    ]
    name_a, name_b = document.diff_names
    legend = legend_html(document.method, document.signed, document.scale, shared=len(document.panes) > 1)
    return _PAGE.render(
        doc=document,
        css=Markup(_CSS),
        legend=Markup(legend),
        columns=max(1, min(len(document.panes), 4)),
        panes=panes,
        name_a=name_a,
        name_b=name_b,
        number=_number,
        stamp=datetime.now(UTC).strftime("%Y-%m-%d"),
    )


def to_frame(document: ExportDocument) -> pd.DataFrame:
    """One row per segment per pane: text, position, raw and normalised score."""
    rows = []
    for pane in document.panes:
        for cell in pane.cells:
            rows.append(
                {
                    "variant": pane.name,
                    "segment": cell["id"],
                    "text": cell["text"],
                    "start": cell["start"],
                    "end": cell["end"],
                    "in_output": bool(cell.get("output")),
                    "explained": bool(cell.get("selected")),
                    "score": float(cell.get("score", 0.0)),
                    "normalized": float(cell.get("value", 0.0)),
                }
            )
    return pd.DataFrame(rows)


def to_csv(document: ExportDocument) -> str:
    return to_frame(document).to_csv(index=False)


def to_json(document: ExportDocument) -> str:
    """Everything: settings, each pane's prompt, output, segments and token scores, the diffs."""
    payload = {
        "title": document.title,
        "caption": document.caption,
        "model": document.model,
        "method": document.method,
        "granularity": document.granularity,
        "scale": document.scale,
        "signed": document.signed,
        "variants": [
            {
                "name": pane.name,
                "subtitle": pane.subtitle,
                "template": pane.template,
                "variables": pane.variables,
                "prompt": pane.prompt,
                "output": pane.output,
                "explained": pane.explained,
                "segments": pane.cells,
                "tokens": pane.result.to_json() if pane.result is not None else None,
            }
            for pane in document.panes
        ],
        "output_diff": (
            {
                "summary": document.output_diff.summary,
                "ops": [{"op": op.op, "text": op.text} for op in document.output_diff.ops],
            }
            if document.output_diff
            else None
        ),
        "parts": [row.to_json() for row in document.parts],
    }
    return json.dumps(payload, ensure_ascii=False, indent=1)


def to_png(page_html: str, width: int = 1400) -> bytes:
    """Render the HTML export in headless Chromium (network blocked) and return a PNG."""
    executable = os.environ.get(CHROMIUM_ENV, DEFAULT_CHROMIUM)
    if not os.path.exists(executable):
        raise WorkbenchError(
            f"PNG export needs Chromium at {executable}; run scripts/setup.sh (it installs Debian's "
            f"chromium) or set ${CHROMIUM_ENV}. The HTML export works without it."
        )
    try:
        from playwright.sync_api import Error, sync_playwright
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
    except ImportError:
        raise WorkbenchError("PNG export needs the playwright package; run scripts/setup.sh.") from None

    deadline = time.monotonic() + PNG_TIMEOUT_SECONDS

    def remaining_ms() -> float:
        """Each step gets what is left of the one budget (Playwright's own timeouts, in ms)."""
        return max(1.0, (deadline - time.monotonic()) * 1000)

    def render() -> bytes:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=executable,
                args=["--headless=new", "--no-sandbox", "--disable-gpu"],
                timeout=remaining_ms(),
            )
            try:
                page = browser.new_page(viewport={"width": width, "height": 800}, device_scale_factor=2)
                page.set_default_timeout(remaining_ms())
                page.route("**/*", lambda route: route.abort())
                page.set_content(page_html, wait_until="load", timeout=remaining_ms())
                return page.screenshot(full_page=True, type="png", timeout=remaining_ms())
            finally:
                browser.close()

    # Playwright's sync API refuses to run in a thread that has an event loop: use a fresh thread.
    # Its own timeouts end a hung launch, page or screenshot; the wait below is only a backstop,
    # and leaving never waits for the thread (a `with` block would wait for a hung Chromium).
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="png export")
    try:
        return pool.submit(render).result(timeout=PNG_TIMEOUT_SECONDS + PNG_CLOSE_SECONDS)
    except PlaywrightTimeout:
        raise WorkbenchError(f"Chromium took over {PNG_TIMEOUT_SECONDS} s to render the PNG.") from None
    except Error as error:
        raise WorkbenchError(f"Chromium could not render the PNG: {str(error).splitlines()[0]}") from None
    except TimeoutError:
        raise WorkbenchError(f"Chromium took over {PNG_TIMEOUT_SECONDS} s to render the PNG.") from None
    finally:
        pool.shutdown(wait=False)
