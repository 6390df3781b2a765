"""The top-segments bars: one per row, escaped labels, the legend's words and colours by sign."""

from components.bars import NEGATIVE, POSITIVE, UNSIGNED, segment_bars_html
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
