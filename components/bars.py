"""The top-segments chart as plain HTML: one bar per segment position, its full label above it.

A chart library squeezes long labels ("“Analysis: it has…” — the first example's Analysis
line") into the axis and leaves the bars no room; here each label wraps on its own line and
its bar uses the full width, at 1440 px and at 1024 px alike. Colours and words are the
heatmap legend's; raw scores are in each bar's tooltip only. All text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

import jinja2

from salience.report.palette import colour
from salience.report.views import Legend

POSITIVE = colour(0.85, True)
NEGATIVE = colour(-0.85, True)
UNSIGNED = colour(0.85, False)

_BARS = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """{% macro bar(width, fill, align) %}<div style="display:flex;justify-content:{{ align }};height:12px">\
<div style="width:{{ '%.1f' % width }}%;min-width:2px;height:12px;border-radius:3px;background:{{ fill }}"></div>\
</div>{% endmacro %}\
<div data-testid="{{ test_id }}" style="font-size:.85rem"><div style="margin-bottom:.5rem;opacity:.9">\
{% if signed %}<span style="color:{{ negative }}">■</span> ← {{ low }} &nbsp;·&nbsp; {{ high }} → \
<span style="color:{{ positive }}">■</span>\
{% else %}<span style="color:{{ unsigned }}">■</span> {{ high }}{% endif %}</div><ol style="margin:0;padding:0">\
{% for row in rows %}<li title="{{ row.tooltip }}" style="margin:0 0 .55rem 0;list-style:none">\
<div style="font-size:.85rem;line-height:1.3;margin-bottom:.15rem">{{ row.label }}\
{% if row.same %} <span style="opacity:.7">(the output copies this)</span>{% endif %}</div>\
{% if signed %}<div style="display:grid;grid-template-columns:1fr 1fr;border-left:1px solid #ccc;\
border-right:1px solid #ccc;background:linear-gradient(#999,#999) 50% 0/1px 100% no-repeat">\
<div>{% if row.score < 0 %}{{ bar(row.share, negative, "flex-end") }}{% endif %}</div>\
<div>{% if row.score >= 0 %}{{ bar(row.share, positive, "flex-start") }}{% endif %}</div></div>\
{% else %}<div style="border-left:1px solid #ccc">{{ bar(row.share, unsigned, "flex-start") }}</div>{% endif %}\
</li>{% endfor %}</ol></div>"""
)


def segment_bars_html(rows: Sequence[dict], legend: Legend, test_id: str = "top-segments") -> str:
    """``rows`` from `salience.report.views.chart_rows`, strongest first; ``legend`` names the colours.

    Negative bars grow left from the middle line, positive ones right (signed scales)."""
    if not rows:
        return ""
    largest = max(abs(row["score"]) for row in rows) or 1.0
    shown = [
        {
            "label": row["label"],
            "same": bool(row.get("same_as_selection")),
            "score": row["score"],
            "share": 100.0 * abs(row["score"]) / largest,
            "tooltip": f"{row['meaning']} · score {row['score']:.4g}",
        }
        for row in rows
    ]
    return _BARS.render(
        rows=shown,
        signed=legend.signed,
        low=legend.low,
        high=legend.high,
        test_id=test_id,
        positive=POSITIVE,
        negative=NEGATIVE,
        unsigned=UNSIGNED,
    )


_CHANGES = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<div data-testid="{{ test_id }}" style="font-size:.85rem"><div style="margin-bottom:.5rem;opacity:.9">\
{% for kind, fill in colours.items() %}<span style="white-space:nowrap"><span style="color:{{ fill }}">■</span> \
{{ kind }}</span>{% if not loop.last %} &nbsp; {% endif %}{% endfor %}<br>{{ axis }}</div>\
<ol style="margin:0;padding:0">{% for row in rows %}<li title="{{ row.tooltip }}" style="margin:0 0 .55rem 0;\
list-style:none"><div style="line-height:1.3;margin-bottom:.15rem">{{ row.label }}</div>\
<div style="display:grid;grid-template-columns:1fr 1fr;border-left:1px solid #ccc;border-right:1px solid #ccc;\
background:linear-gradient(#999,#999) 50% 0/1px 100% no-repeat">\
{% for side in ("left", "right") %}<div style="display:flex;justify-content:{{ 'flex-end' if side == 'left' \
else 'flex-start' }};height:12px">{% if row.side == side %}<div style="width:{{ '%.1f' % row.share }}%;\
min-width:2px;height:12px;border-radius:3px;background:{{ row.fill }}"></div>{% endif %}</div>{% endfor %}\
</div></li>{% endfor %}</ol></div>"""
)


def change_bars_html(
    rows: Sequence[dict], colours: dict[str, str], axis: str, test_id: str = "part-changes"
) -> str:
    """One two-sided bar per part, its full label above it (Compare's "what changed" chart).

    Args:
        rows: dicts with ``label``, ``moved`` (signed: right is more in B), ``kind`` (a key of
            ``colours``) and ``tooltip``, in the order to show.
        colours: each kind's colour, also the legend's entries in order.
        axis: the words under the legend that say what left and right mean.
        test_id: the chart's ``data-testid``.

    Returns:
        Escaped HTML for ``st.html``; empty without rows.
    """
    if not rows:
        return ""
    largest = max(abs(row["moved"]) for row in rows) or 1.0
    shown = [
        {
            "label": row["label"],
            "side": "left" if row["moved"] < 0 else "right",
            "share": 100.0 * abs(row["moved"]) / largest,
            "fill": colours[row["kind"]],
            "tooltip": row["tooltip"],
        }
        for row in rows
    ]
    return _CHANGES.render(rows=shown, colours=colours, axis=axis, test_id=test_id)
