"""Per-slot roll-up and the sample prompt files."""

import json

import numpy as np
import pytest

from salience.core.errors import InputError
from salience.prompts.rollup import rollup, rollup_by_variable
from salience.prompts.samples import SAMPLES_PATH, find_sample, load_samples, parse_jsonl, parse_record
from salience.prompts.templates import render


def test_rollup_totals_shares_and_means():
    rendered = render("Likes: {food}\nAnalysis:", {"food": "Cheese and ham"})
    prompt = rendered.text
    target = " tasty"
    text = prompt + target
    # tokens: <bos>, "Likes:", " Cheese", " and", " ham", "\n", "Analysis:", " tasty"
    offsets = [(0, 0), (0, 6), (6, 13), (13, 17), (17, 21), (21, 22), (22, 31), (31, 37)]
    assert text[22:31] == "Analysis:"
    scores = np.array([9.0, 1.0, 2.0, 2.0, -2.0, 0.5, 1.5, 0.0])
    rows = {row.name: row for row in rollup(rendered.slots, text, offsets, scores, len(prompt))}
    assert rows["text 1"].total == 1.0 and rows["text 1"].tokens == 1
    assert rows["text 1"].label == "“Likes:”" and rows["food"].label == "food"
    assert rows["food"].total == 2.0 and rows["food"].tokens == 3
    assert rows["food"].mean == pytest.approx(2.0 / 3)
    assert rows["text 2"].total == 2.0 and rows["text 2"].tokens == 2  # "\n" + "Analysis:"
    assert sum(row.share for row in rows.values()) == pytest.approx(1.0)
    assert rows["food"].share == pytest.approx(2.0 / 5.0)


def test_rollup_merges_repeated_variables():
    rendered = render("{a} x {a}", {"a": "hi"})
    offsets = [(0, 0), (0, 2), (2, 4), (4, 7)]
    rows = rollup(rendered.slots, rendered.text, offsets, np.array([0, 1.0, 2.0, 3.0]), len(rendered.text))
    merged = {row.name: row for row in rollup_by_variable(rows)}
    assert merged["a"].total == 4.0 and merged["a"].tokens == 2


def test_shipped_samples_are_valid():
    samples = load_samples()
    sources = [s.name for s in samples]
    for name in ("fewshot-mistake", "fewshot-fixed", "fewshot-constitution"):
        assert name in sources
    assert len(samples) >= 8
    mistake = find_sample("fewshot-mistake").render().text
    assert mistake.endswith("Suggestion: Quiche Lorraine\nAnalysis:")
    assert "Recommendation: You have to try it.\n\nTaste-likes" in mistake
    assert "Recommendation: Avoid." in find_sample("fewshot-fixed").render().text
    assert SAMPLES_PATH.read_text(encoding="utf-8").count("\n") == len(samples)


def test_lit_format_and_braces_are_literal():
    [example] = parse_jsonl('{"prompt": "Use {braces} literally", "target": " ok"}')
    assert example.render().text == "Use {braces} literally"
    assert example.target == " ok" and example.variables == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"prompt": "ok"}\n{bad json', "Row 2: not valid JSON"),
        ('{"target": "x"}', "Row 1: missing field 'prompt'"),
        ('{"prompt": 5}', "Row 1: field 'prompt' must be text"),
        ('["a"]', "Row 1: expected a JSON object"),
        ('{"template": "{a}", "variables": {"a": 1}}', "Row 1: 'variables' must map"),
        ('{"template": "{a} {b}", "variables": {"a": "1"}}', "Row 1: Template needs a value for b"),
        ("", "no prompts"),
        (b"\xff\xfe", "not UTF-8"),
        (b"x" * 5_000_001, "larger than"),
    ],
)
def test_user_file_errors_name_the_row(content, message):
    with pytest.raises(InputError, match=message):
        parse_jsonl(content)


def test_unknown_sample():
    with pytest.raises(InputError, match="No sample named"):
        find_sample("nope")


def test_samples_round_trip_json():
    lines = SAMPLES_PATH.read_text(encoding="utf-8").splitlines()
    for row, line in enumerate(lines, start=1):
        record = json.loads(line)
        example = parse_record(record, row)
        written = example.to_json()
        # every field of the sample kept under its name ("source" is the variant's name), nothing else
        assert written.pop("uid") == example.uid
        assert {("source" if k == "name" else k): v for k, v in written.items()} == record
        again = parse_record(json.loads(json.dumps(example.to_json())), row)
        assert again == example and again.uid == example.uid


def test_a_plain_prompt_row_round_trips_as_a_template():
    example = parse_record({"prompt": "f({x})", "target": " y", "source": "lit"}, 1)
    written = example.to_json()
    assert written == {
        "name": "lit",
        "template": "f({{x}})",
        "variables": {},
        "target": " y",
        "uid": example.uid,
    }
    assert parse_record(written, 1) == example
    assert example.render().text == "f({x})"
