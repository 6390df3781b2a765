"""Comparing variants: target resolution, output diff, slot/sentence-aligned salience diff, exports."""

import json
from html.parser import HTMLParser

import numpy as np
import pytest
import regex

from salience.core.errors import InputError
from salience.core.types import SalienceResult
from salience.prompts.segments import sentence_spans
from salience.prompts.variant_comparison import (
    TargetChoice,
    Variant,
    movement,
    output_diff,
    part_diff,
    readable_order,
    resolve_target,
    shared_scale,
)
from salience.report.export import ExportDocument, ExportPane, to_csv, to_html, to_json
from salience.report.palette import colour
from salience.report.views import heatmap_view


def word_offsets(text):
    return [(0, 0)] + [m.span() for m in regex.finditer(r"\n+|[^\S\n]*[^\s]+|[^\S\n]+", text)]


def scored(rendered, target, weights):
    """A salience result whose score for each token is the weight of the first word it contains."""
    text = rendered.text + target
    offsets = word_offsets(text)
    values = np.zeros(len(offsets), np.float32)
    for index, (start, end) in enumerate(offsets):
        if start >= len(rendered.text):
            continue
        word = text[start:end].strip()
        values[index] = weights.get(word, 0.1)
    first = next(i for i, (s, _) in enumerate(offsets) if s >= len(rendered.text) and i > 0)
    return SalienceResult(
        text,
        len(rendered.text),
        tuple(text[s:e] for s, e in offsets),
        tuple(offsets),
        (first, len(offsets)),
        {"grad_l2": values},
    )


MISTAKE = Variant(
    "mistake",
    "Likes cheese. Hates eggs.\nRecommendation: {first}\n\nLikes {likes}.\nRecommendation:",
    {"first": "You have to try it.", "likes": "ham"},
)
FIXED = Variant("fixed", MISTAKE.template, {**MISTAKE.variables, "first": "Avoid."})
CONSTITUTION = Variant(
    "constitution",
    "Be careful with allergies.\n" + MISTAKE.template,
    {**MISTAKE.variables, "first": "Avoid."},
)


def test_variant_round_trip_and_bad_shapes():
    again = Variant.from_json(json.loads(json.dumps(MISTAKE.to_json())))
    assert again == MISTAKE and again.uid == MISTAKE.uid
    with pytest.raises(InputError, match="missing field 'name'"):
        Variant.from_json({"template": "x"})


def test_anchor_target_is_the_line_that_starts_with_it():
    prompt = "P:"
    output = " it has eggs.\nRecommendation: Avoid.  \nMore."
    resolved = resolve_target(TargetChoice("anchor", "Recommendation"), prompt, output)
    text = prompt + output
    assert text[resolved.span[0] : resolved.span[1]] == "Recommendation: Avoid."
    assert resolved.explained == "Recommendation: Avoid."
    lower = resolve_target(TargetChoice("anchor", "recommendation"), prompt, output)
    assert lower.span == resolved.span
    missing = resolve_target(TargetChoice("anchor", "Verdict"), prompt, output)
    assert missing.span is None and "not in this output" in missing.note
    assert resolve_target(TargetChoice("anchor", "Recommendation"), prompt, "  ") is None
    reference = resolve_target(TargetChoice("reference", " 11 am"), prompt, None)
    assert reference.target == " 11 am" and reference.span is None
    assert resolve_target(TargetChoice("reference", ""), prompt, "x") is None
    with pytest.raises(InputError):
        resolve_target(TargetChoice("nonsense"), prompt, "x")


def test_output_diff_words_and_edge_cases():
    diff = output_diff("You have to try it.", "You should avoid it.")
    assert diff.added == 2 and diff.removed == 3
    rebuilt_a = "".join(op.text for op in diff.ops if op.op != "insert")
    rebuilt_b = "".join(op.text for op in diff.ops if op.op != "delete")
    assert rebuilt_a == "You have to try it." and rebuilt_b == "You should avoid it."
    assert [op.op for op in diff.ops] == ["equal", "delete", "insert", "equal"]
    assert "identical" in output_diff("same", "same").summary
    assert "Both outputs are empty" in output_diff("", "").summary
    assert "wrote nothing" in output_diff("", "words here").summary
    assert "spacing" in output_diff("a b", "a  b").summary


def test_part_diff_aligns_by_slot_and_sentence_not_token_index():
    weights = {"You": 2.0, "Avoid.": 1.0, "allergies.": 3.0}
    rendered_a, rendered_b = MISTAKE.render(), CONSTITUTION.render()
    result_a = scored(rendered_a, " Avoid.", weights)
    result_b = scored(rendered_b, " Avoid.", weights)
    rows = part_diff((rendered_a, result_a), (rendered_b, result_b), "grad_l2")
    by_part = {row.part: row for row in rows}
    assert by_part["{first}"].status == "changed"
    assert by_part["{first}"].score_a == pytest.approx(2.0 + 0.1 * 4)  # You have to try it.
    assert by_part["{first}"].score_b == pytest.approx(1.0)
    assert by_part["{likes}"].status == "same text" and by_part["{likes}"].delta == pytest.approx(0)
    # The added constitution line is only in B; the sentences after it still pair up.
    only_b = [row for row in rows if row.status == "only in B"]
    assert len(only_b) == 1 and "allergies" in only_b[0].text_b and only_b[0].delta is None
    assert only_b[0].score_b == pytest.approx(0.1 * 4 + 3.0)  # Be careful with allergies. \n
    paired = [row for row in rows if row.kind == "sentence" and row.status == "same text"]
    assert [row.text_a.strip() for row in paired][:3] == ["Likes cheese.", "Hates eggs.", "Recommendation:"]
    assert all(row.delta == pytest.approx(0) for row in paired)
    # A shifted prompt still aligns: every A part appears exactly once.
    assert sum(row.score_a is not None for row in rows) == len(
        [r for r in part_diff((rendered_a, result_a), (rendered_a, result_a), "grad_l2")]
    )


def test_part_diff_reads_for_reviewers_changed_text_first_and_moves_in_words():
    weights = {"You": 2.0, "Avoid.": 1.0, "Hates": 5.0}
    rendered_a, rendered_b = MISTAKE.render(), FIXED.render()
    result_a = scored(rendered_a, " Avoid.", weights)
    weights_b = {**weights, "Hates": 9.0}  # the same sentence, leaned on more in B
    result_b = scored(rendered_b, " Avoid.", weights_b)
    rows = readable_order(part_diff((rendered_a, result_a), (rendered_b, result_b), "grad_l2"))
    assert rows[0].status == "changed" and rows[0].text_b == "Avoid."
    assert rows[0].title == "“Avoid.” — in the 1st Recommendation line, the ‘first’ value"
    assert all(not row.text_changed for row in rows[1:])
    hates = rows[1]  # the biggest move among the parts whose text did not change
    assert hates.title == "“Hates eggs.”" and hates.text_a.strip() == "Hates eggs."
    largest = max(abs(v) for row in rows for v in (row.score_a, row.score_b) if v is not None)
    assert movement(hates, largest) == "same text; the answer leans on it more in B"
    assert movement(rows[0], largest) == "text changed; the answer leans on it less in B"
    assert movement(rows[-1], largest) == "same text; the answer leans on it about as much in both"
    assert "label" in rows[0].to_json()


def test_part_diff_needs_the_method():
    rendered = MISTAKE.render()
    result = scored(rendered, " x", {})
    with pytest.raises(InputError, match="grad_dot_input"):
        part_diff((rendered, result), (rendered, result), "grad_dot_input")


def test_sentence_spans_cover_the_text():
    text = "Hello there. Dr. Who is here.\nNext line"
    spans = sentence_spans(text)
    assert "".join(text[s:e] for s, e in spans) == text
    assert [text[s:e].strip() for s, e in spans] == ["Hello there.", "Dr. Who is here.", "Next line"]


def test_shared_scale_is_the_largest():
    assert shared_scale([0.5, 2.0, float("nan"), 0.0]) == 2.0
    assert shared_scale([]) == 0.0


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.urls, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") or (value and "url(" in value):
                self.urls.append(value)

    def handle_data(self, data):
        self.text.append(data)


def _document(panes_text=("<script>alert(1)</script> Likes", "Avoid.")):
    panes = []
    for index, prompt in enumerate(panes_text):
        rendered = Variant(f"v{index}", prompt).render()
        result = scored(rendered, " Avoid.", {"Likes": 2.0})
        view = heatmap_view(result.text, result.offsets, len(prompt), "words", "grad_l2", result, rendered)
        panes.append(
            ExportPane(f"variant {index}", "Explaining “Avoid.”", view.cells(len(prompt)), result=result)
        )
    return ExportDocument("Comparison", "Explaining “Avoid.” · Grad L2 · words · tiny", panes, False, 2.0)


def test_html_export_is_self_contained_and_escapes_text():
    page = to_html(_document())
    parser = _Collector()
    parser.feed(page)
    assert "script" not in parser.tags and not parser.urls
    assert "link" not in parser.tags and "@import" not in page and "http" not in page.split("<body>")[1]
    assert "<script>alert(1)</script>" in "".join(parser.text)  # shown as text
    assert colour(1.0, False) in page  # the strongest segment is coloured
    assert "shared by all panes" in page and "Grad L2" in page


def test_csv_and_json_exports():
    document = _document()
    csv = to_csv(document)
    assert csv.splitlines()[0] == "variant,segment,text,start,end,in_output,explained,score,normalized"
    payload = json.loads(to_json(document))
    assert [v["name"] for v in payload["variants"]] == ["variant 0", "variant 1"]
    assert payload["variants"][0]["tokens"]["scores"]["grad_l2"]
    assert payload["variants"][0]["tokens"]["format_version"] == 2
