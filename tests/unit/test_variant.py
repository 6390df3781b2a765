"""One Variant for samples, Compare variants and evaluation variants: one JSON form, and every
shape saved before they were one type still loads."""

from __future__ import annotations

import json

import pytest

from salience.core.errors import InputError
from salience.evaluation.runs import Check, Dataset, plan_evaluation, plan_from_json, plan_to_json
from salience.prompts.samples import SAMPLES_PATH, load_samples, parse_jsonl
from salience.prompts.variant import Variant

TEMPLATE = "Likes: {likes}\nItem: {item}\nRecommendation:"


def test_round_trip_keeps_every_field():
    variant = Variant(
        "menu", TEMPLATE, {"likes": "soup", "item": "{braces}"}, output=" Avoid.", target=" ok", notes="n"
    )
    again = Variant.from_json(json.loads(json.dumps(variant.to_json())))
    assert again == variant
    assert again.uid == variant.uid
    assert (again.output, again.target, again.notes) == (" Avoid.", " ok", "n")


def test_optional_fields_without_a_value_are_left_out():
    assert set(Variant("a", "{x}").to_json()) == {"name", "template", "variables", "uid"}


def test_uid_is_not_part_of_equality():
    assert Variant("a", "{x}", {"x": "1"}) == Variant("a", "{x}", {"x": "1"})
    assert Variant("a", "{x}", {"x": "1"}) != Variant("a", "{x}", {"x": "2"})


def test_a_compare_variant_saved_in_a_link_or_autosave_loads():
    # Variant.to_json as Compare wrote it before the types were unified (``output`` always present).
    saved = {
        "name": "fewshot-fixed",
        "template": "Say {x}",
        "variables": {"x": "hi"},
        "output": None,
        "uid": "1a2b3c4d",
    }
    variant = Variant.from_json(saved)
    assert (variant.name, variant.template, variant.variables) == ("fewshot-fixed", "Say {x}", {"x": "hi"})
    assert variant.output is None and variant.uid == "1a2b3c4d"
    assert Variant.from_json({**saved, "output": " hello"}).output == " hello"


def test_a_variant_without_a_uid_gets_one():
    first = Variant.from_json({"name": "a", "template": "{x}"})
    second = Variant.from_json({"name": "a", "template": "{x}"})
    assert first.uid and second.uid and first.uid != second.uid


def test_an_old_sample_record_loads():
    # PromptExample.to_json's shape: ``source`` for the name, plus target and notes.
    record = {"source": "lit", "template": "Q: {q}", "variables": {"q": "why"}, "target": " A", "notes": "n"}
    variant = Variant.from_json(record)
    assert (variant.name, variant.variables, variant.target, variant.notes) == (
        "lit",
        {"q": "why"},
        " A",
        "n",
    )


def test_a_plain_prompt_record_keeps_its_braces_literal():
    variant = Variant.from_json({"prompt": "f({x})"}, default_name="row 3")
    assert variant.name == "row 3" and variant.template == "f({{x}})"
    assert variant.render().text == "f({x})"


def test_the_shipped_samples_are_variants_with_their_values():
    samples = load_samples()
    lines = SAMPLES_PATH.read_text(encoding="utf-8").splitlines()
    assert [sample.name for sample in samples] == [json.loads(line)["source"] for line in lines]
    assert all(isinstance(sample, Variant) for sample in samples)
    assert any(sample.variables for sample in samples)


def test_an_evaluation_plan_saved_with_defaults_still_opens():
    # plan_to_json before the types were unified: each variant's values under ``defaults``.
    saved = {
        "variants": [
            {"name": "fixed", "template": "First: {first}\nItem: {item}", "defaults": {"first": "Avoid."}},
            {"name": "plain", "template": "Item: {item}", "defaults": {}},
        ],
        "columns": ["item", "expected"],
        "rows": [{"item": "Soup", "expected": "Avoid"}],
        "checks": [{"kind": "contains", "value": "Avoid", "ignore_case": True}],
        "expected_column": "expected",
    }
    plan = plan_from_json(saved)
    assert [v.name for v in plan.variants] == ["fixed", "plain"]
    assert plan.variants[0].variables == {"first": "Avoid."}
    assert plan.rendered(0, 0).text == "First: Avoid.\nItem: Soup"
    assert plan_from_json(json.loads(json.dumps(plan_to_json(plan)))) == plan


def test_a_new_evaluation_plan_round_trips():
    variant = Variant("fixed", "First: {first}\nItem: {item}", {"first": "Avoid."})
    plan = plan_evaluation([variant], Dataset(("item",), ({"item": "Soup"},)), [Check("contains", "x")])
    saved = plan_to_json(plan)
    assert saved["variants"] == [
        {"name": "fixed", "template": "First: {first}\nItem: {item}", "variables": {"first": "Avoid."}}
    ]
    assert plan_from_json(saved) == plan


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["a"], "expected a JSON object"),
        ({"template": "{x}"}, "missing field 'name'"),
        ({"name": "a"}, "missing field 'prompt'"),
        ({"name": 5, "template": "{x}"}, "field 'name' must be text"),
        ({"name": "a", "template": "{x}", "variables": {"x": 1}}, "'variables' must map names to text"),
        ({"name": "a", "template": "{x}", "variables": {"x": {"nested": "no"}}}, "'variables' must map"),
        ({"name": "a", "template": "{x}", "output": ["x"]}, "field 'output' must be text"),
    ],
)
def test_malformed_variants_name_the_field(data, message):
    with pytest.raises(InputError, match=message):
        Variant.from_json(data)


def test_a_jsonl_row_error_names_the_row():
    with pytest.raises(InputError, match="Row 2: 'variables' must map"):
        parse_jsonl('{"prompt": "ok"}\n{"template": "{a}", "variables": {"a": ["x"]}}')
