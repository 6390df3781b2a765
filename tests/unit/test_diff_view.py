"""The word diff box: user text escaped, insertions and deletions marked."""

from components.diff_view import diff_html
from salience.prompts.variant_comparison import output_diff


def test_diff_marks_insertions_and_deletions_and_escapes_text():
    page = diff_html(output_diff("Keep <b>this</b> word.", "Keep <b>that</b> word.", "A", "B"), "what-if")
    assert page.startswith('<div data-testid="what-if"')
    assert "<b>" not in page and "&lt;b&gt;" in page  # text from prompts and outputs is never markup
    assert "<del" in page and "<ins" in page
    assert page.index("<del") < page.index("</del>") and "this" in page.split("<del")[1].split("</del>")[0]
    assert "that" in page.split("<ins")[1].split("</ins>")[0]


def test_identical_texts_have_no_marks():
    page = diff_html(output_diff("Same words.", "Same words.", "A", "B"))
    assert "<ins" not in page and "<del" not in page and "Same words." in page
