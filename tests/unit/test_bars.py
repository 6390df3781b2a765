"""The top-segments bars: one per row, escaped labels, the legend's words and colours by sign."""

from components.bars import NEGATIVE, POSITIVE, UNSIGNED, change_bars_html, segment_bars_html
from salience.report.views import legend_words


def rows():
    return [
        {"label": "“<b>Stop.</b>”", "score": -3.0, "meaning": "worked against", "same_as_selection": False},
        {
            "label": "“Go.” — the 2nd of 2 copies",
            "score": 2.0,
            "meaning": "supported",
            "same_as_selection": True,
        },
        {
            "label": "“Go.” — the 1st of 2 copies",
            "score": 1.0,
            "meaning": "supported",
            "same_as_selection": True,
        },
    ]


def test_signed_bars_grow_from_the_middle_with_the_legend_words():
    page = segment_bars_html(rows(), legend_words("occlusion", 3.0))
    assert page.count("<li") == 3
    assert "<b>Stop" not in page and "&lt;b&gt;Stop." in page  # user text is escaped
    assert page.index("← worked against") < page.index("supported (output less likely without it) →")
    first, second = page.split("<li")[1:3]
    assert (
        f"background:{NEGATIVE}" in first and "width:100.0%" in first and "justify-content:flex-end" in first
    )
    assert f"background:{POSITIVE}" in second and "width:66.7%" in second
    assert "the output copies this" in second and 'title="supported · score 2"' in second
    assert "score" not in page.split("<ol")[0]  # numbers only in tooltips


def test_unsigned_bars_and_no_rows():
    unsigned = [dict(row, score=abs(row["score"])) for row in rows()]
    page = segment_bars_html(unsigned, legend_words("grad_l2", 3.0))
    assert f"background:{UNSIGNED}" in page and NEGATIVE not in page
    assert "output most sensitive to this" in page and "←" not in page
    assert segment_bars_html([], legend_words("grad_l2", 0.0)) == ""


def test_change_bars_put_less_left_more_right_with_full_escaped_labels():
    colours = {"text changed": "#6d28d9", "same text": "#94a3b8"}
    rows = [
        {
            "label": "1. <b>Avoid.</b> — a long label " * 4,
            "moved": -0.5,
            "kind": "text changed",
            "tooltip": "less",
        },
        {"label": "2. Recommendation:", "moved": 0.25, "kind": "same text", "tooltip": "more & more"},
    ]
    html = change_bars_html(rows, colours, "← less in B · more in B →")
    assert "<b>" not in html and "&lt;b&gt;Avoid.&lt;/b&gt;" in html  # labels are text
    assert html.count("a long label") == 4  # whole, not cut to fit an axis
    assert "more &amp; more" in html
    assert "text changed" in html and "same text" in html and "← less in B · more in B →" in html
    first, second = html.split("<li")[1:]
    assert "width:100.0%" in first and "#6d28d9" in first  # the largest movement fills its side
    assert "width:50.0%" in second and "#94a3b8" in second
    # the first bar sits in the left half (justify flex-end), the second in the right half
    assert first.index("width:100.0%") < first.index("flex-start")
    assert second.index("width:50.0%") > second.index("flex-start")
    assert change_bars_html([], colours, "") == ""
