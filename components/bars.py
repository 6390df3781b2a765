"""The top-segments chart as plain HTML: one bar per segment position, its full label above it.

A chart library squeezes long labels ("“Analysis: it has…” — the first example's Analysis
line") into the axis and leaves the bars no room; here each label wraps on its own line and
its bar uses the full width, at 1440 px and at 1024 px alike. Colours and words are the
heatmap legend's; raw scores are in each bar's tooltip only. All text is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from salience.palette import colour
from salience.views import Legend

POSITIVE = colour(0.85, True)
NEGATIVE = colour(-0.85, True)
UNSIGNED = colour(0.85, False)


def _bar(width: float, fill: str, align: str) -> str:
    return (
        f'<div style="display:flex;justify-content:{align};height:12px">'
        f'<div style="width:{width:.1f}%;min-width:2px;height:12px;border-radius:3px;background:{fill}"></div></div>'
    )


def segment_bars_html(rows: Sequence[dict], legend: Legend, test_id: str = "top-segments") -> str:
    """``rows`` from `salience.views.chart_rows`, strongest first; ``legend`` names the colours."""
    if not rows:
        return ""
    largest = max(abs(row["score"]) for row in rows) or 1.0
    if legend.signed:
        key = (
            f'<span style="color:{NEGATIVE}">■</span> ← {html.escape(legend.low)}'
            f' &nbsp;·&nbsp; {html.escape(legend.high)} → <span style="color:{POSITIVE}">■</span>'
        )
    else:
        key = f'<span style="color:{UNSIGNED}">■</span> {html.escape(legend.high)}'
    items = []
    for row in rows:
        share = 100.0 * abs(row["score"]) / largest
        label = html.escape(row["label"])
        if row.get("same_as_selection"):
            label += ' <span style="opacity:.7">(same text as the selection)</span>'
        if legend.signed:  # negative bars grow left from the middle line, positive ones right
            left = _bar(share, NEGATIVE, "flex-end") if row["score"] < 0 else ""
            right = _bar(share, POSITIVE, "flex-start") if row["score"] >= 0 else ""
            track = (
                '<div style="display:grid;grid-template-columns:1fr 1fr;border-left:1px solid #ccc;'
                'border-right:1px solid #ccc;background:linear-gradient(#999,#999) 50% 0/1px 100% no-repeat">'
                f"<div>{left}</div><div>{right}</div></div>"
            )
        else:
            track = f'<div style="border-left:1px solid #ccc">{_bar(share, UNSIGNED, "flex-start")}</div>'
        tooltip = html.escape(f"{row['meaning']} · score {row['score']:.4g}", quote=True)
        items.append(
            f'<li title="{tooltip}" style="margin:0 0 .55rem 0;list-style:none">'
            f'<div style="font-size:.85rem;line-height:1.3;margin-bottom:.15rem">{label}</div>{track}</li>'
        )
    return (
        f'<div data-testid="{html.escape(test_id, quote=True)}" style="font-size:.85rem">'
        f'<div style="margin-bottom:.5rem;opacity:.9">{key}</div>'
        f'<ol style="margin:0;padding:0">{"".join(items)}</ol></div>'
    )
