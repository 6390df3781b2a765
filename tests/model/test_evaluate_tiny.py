"""Evaluation on a tiny random Gemma: the run loop, resuming, part shares, and the CLI."""

import json

import pytest

from salience.cli.commands import main
from salience.core.types import GenerationSettings
from salience.evaluation.runs import (
    Check,
    parse_data,
    part_shares,
    plan_evaluation,
    run_evaluation,
    share_rows,
)
from salience.prompts.variant import Variant
from salience.prompts.variant_comparison import TargetChoice

SETTINGS = GenerationSettings(max_new_tokens=4)


@pytest.fixture(scope="module")
def plan():
    data = parse_data("likes,item\nCheese,Quiche\nSweets,Onion soup\nFish,Cake\n")
    variants = [
        Variant("A", "Likes: {likes}\nItem: {item}\nRecommendation:"),
        Variant("B", "Item: {item}\nLikes: {likes}\nRecommendation:"),
    ]
    return plan_evaluation(variants, data, [Check("max-words", "100")])


def test_run_matches_one_at_a_time_and_resumes(plan, tiny_gemma3_lm):
    results = list(run_evaluation(plan, tiny_gemma3_lm, SETTINGS, batch_size=2))
    assert sorted((c.row, c.variant) for c in results) == [(r, v) for r in range(3) for v in range(2)]
    for cell in results:
        alone = tiny_gemma3_lm.generate(plan.rendered(cell.row, cell.variant).text, SETTINGS)
        assert cell.output == alone.text and cell.passed
    done = {(0, 0), (1, 0), (2, 1)}
    rest = list(run_evaluation(plan, tiny_gemma3_lm, SETTINGS, done=done, batch_size=2))
    assert {(c.row, c.variant) for c in rest} == {(2, 0), (0, 1), (1, 1)}


def test_cancel_stops_between_batches(plan, tiny_gemma3_lm):
    results = []
    for cell in run_evaluation(
        plan, tiny_gemma3_lm, SETTINGS, batch_size=2, cancelled=lambda: len(results) >= 2
    ):
        results.append(cell)
    assert len(results) == 2


@pytest.mark.parametrize("batch_size", [1, 2])
def test_cancel_within_a_batch_stops_its_decoding_and_keeps_nothing_of_it(plan, tiny_gemma3_lm, batch_size):
    polls = []

    def cancelled():  # a session that ends a few decoding steps into the first batch
        polls.append(1)
        return len(polls) > 3

    assert (
        list(run_evaluation(plan, tiny_gemma3_lm, SETTINGS, batch_size=batch_size, cancelled=cancelled)) == []
    )
    assert len(polls) < 8  # polled between decoding steps, not only between batches


def test_part_shares_sum_to_one_per_row(plan, tiny_gemma3_lm):
    rendered = plan.rendered(0, 0)
    shares = part_shares(
        tiny_gemma3_lm, rendered, " Avoid.\nRecommendation: good", TargetChoice("anchor", "Recommendation")
    )
    assert {"likes", "item"} <= set(shares)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert part_shares(tiny_gemma3_lm, rendered, "  ", TargetChoice("anchor", "x")) is None
    results = list(
        run_evaluation(
            plan,
            tiny_gemma3_lm,
            SETTINGS,
            target=TargetChoice("output"),
            done={(1, 0), (2, 0), (1, 1), (2, 1)},
        )
    )
    rows = share_rows(plan, [c for c in results if c.shares])
    assert rows and {row["variant"] for row in rows} <= {"A", "B"}


def test_too_long_row_becomes_an_error_cell(tiny_gemma3_lm):
    data = parse_data("item\nshort\n" + "word " * 400 + "\n")
    plan = plan_evaluation([Variant("A", "Item: {item}")], data, [Check("max-words", "50")])
    results = list(run_evaluation(plan, tiny_gemma3_lm, SETTINGS, batch_size=2))
    assert results[0].error is None
    assert results[1].error.startswith("Row 2: ") and not results[1].passed


def test_cli_json_and_exit_codes(tmp_path, capsys, tiny_spec):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("Likes: {likes}\nItem: {item}\nRecommendation:")
    b.write_text("Item: {item}\nRecommendation:")
    data = tmp_path / "rows.csv"
    data.write_text("likes,item,expected\nCheese,Quiche,Avoid\nSweets,Cake,good\n")
    common = [
        "evaluate",
        "--model",
        tiny_spec,
        "--template-file",
        str(a),
        "--template-file",
        str(b),
        "--data",
        str(data),
    ]
    status = main(
        [
            *common,
            "--check",
            "max-words:200",
            "--expected-column",
            "expected",
            "--json",
            "--quiet",
            "--max-new-tokens",
            "3",
        ]
    )
    out, err = capsys.readouterr()
    assert status == 0, err
    report = json.loads(out)
    assert [v["name"] for v in report["variants"]] == ["a", "b"]
    assert set(report["variants"][0]) >= {"pass_rate", "interval"}
    assert report["rows"][0]["values"]["item"] == "Quiche"
    assert set(report["rows"][0]["variants"]["a"]) >= {"output", "checks"}
    assert isinstance(report["flips"], list)
    status = main(
        [*common, "--check", "contains:zzzz-never", "--fail-under", "0.5", "--quiet", "--max-new-tokens", "2"]
    )
    out, err = capsys.readouterr()
    assert status == 1 and "below --fail-under 0.5" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--check", "regex:(x"], "not a valid regular expression"),
        (["--check", "wat:x"], "Unknown check 'wat'"),
        (["--expected-column", "nope"], "expected-answer column 'nope'"),
        (["--fail-under", "5"], "between 0 and 1"),
    ],
)
def test_cli_mistakes_exit_2_before_loading(tmp_path, capsys, extra, message):
    template = tmp_path / "t.txt"
    template.write_text("Item: {item}")
    data = tmp_path / "rows.csv"
    data.write_text("item\nSoup\n")
    argv = [
        "evaluate",
        "--model",
        "gguf:/nonexistent.gguf",
        "--template-file",
        str(template),
        "--data",
        str(data),
    ]
    status = main([*argv, *extra])
    err = capsys.readouterr().err
    assert status == 2 and message in err and err.count("\n") == 1


def test_cli_missing_column_exit_2(tmp_path, capsys):
    data = tmp_path / "rows.csv"
    data.write_text("dish\nSoup\n")
    argv = ["evaluate", "--model", "gguf:/nonexistent.gguf", "--template-file", "sample:headline"]
    status = main([*argv, "--data", str(data)])
    assert status == 2 and "add a column named 'article'" in capsys.readouterr().err
