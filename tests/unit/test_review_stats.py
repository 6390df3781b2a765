"""Blind review statistics against values worked out by hand."""

from __future__ import annotations

import json

import pytest

from salience.evaluation.review_stats import (
    ReviewItem,
    Verdict,
    agreement,
    balanced_sides,
    button_for,
    check_conflicts,
    choice_for,
    cohen_kappa,
    disagreements,
    export_csv,
    export_jsonl,
    krippendorff_alpha,
    left_variant,
    majority,
    position_bias,
    report_html,
    summarize_review,
    win_rates,
)

NAMES = ("fewshot-mistake", "fewshot-fixed")
ANA = ["first", "first", "first", "second", "second", "same", "same", "neither", "first", "second"]
BEN = ["first", "first", "second", "second", "same", "same", "same", "neither", "first", "first"]


def _verdicts(reviewer: str, choices: list[str], lefts: list[int] | None = None) -> list[Verdict]:
    lefts = lefts or [0] * len(choices)
    return [Verdict(i + 1, reviewer, c, left) for i, (c, left) in enumerate(zip(choices, lefts))]


def test_cohen_kappa_by_hand():
    # agreement 7/10; chance (4·4 + 3·2 + 2·3 + 1·1)/100 = 0.29; kappa = 0.41 / 0.71
    assert cohen_kappa(list(zip(ANA, BEN))) == pytest.approx(0.41 / 0.71)
    assert cohen_kappa([("first", "first")] * 3) is None  # one answer throughout: undefined
    assert cohen_kappa([]) is None
    assert cohen_kappa([("first", "second"), ("second", "first")]) == pytest.approx(-1.0)


def test_krippendorff_alpha_by_hand():
    # two raters, the same data: n = 20, 3 disagreeing units -> 6 off-diagonal coincidences,
    # sum of n_c·n_k (c ≠ k) = 400 − (8² + 5² + 5² + 2²) = 282; alpha = 1 − 19·6/282
    units = [[a, b] for a, b in zip(ANA, BEN)]
    assert krippendorff_alpha(units) == pytest.approx(1 - 19 * 6 / 282)
    # three raters with a missing answer; a unit with one answer is left out:
    # o_aa = 3, o_bb = 3, o_ab = o_ba = 1; n_a = n_b = 4; alpha = 1 − 7·2/32
    assert krippendorff_alpha([["a", "a", "a"], ["a", "b"], ["b", "b", "b"], ["a"]]) == pytest.approx(0.5625)
    assert krippendorff_alpha([["a", "a"], ["a", "a"]]) is None
    assert krippendorff_alpha([["a"]]) is None


def test_agreement_picks_kappa_for_two_and_alpha_for_more():
    two = agreement(_verdicts("Ana", ANA) + _verdicts("Ben", BEN))
    assert two.measure == "kappa" and two.items == 10
    assert two.kappa == pytest.approx(0.41 / 0.71)
    assert two.alpha == pytest.approx(1 - 19 * 6 / 282)
    assert "moderately" in two.words
    three = agreement(_verdicts("Ana", ANA) + _verdicts("Ben", BEN) + _verdicts("Cy", ANA))
    assert three.measure == "alpha" and three.kappa is None and three.alpha is not None
    # the same name, spelled with other case and spaces, is the same reviewer
    assert agreement(_verdicts("Ana", ANA) + _verdicts(" ana ", BEN)).items == 0


def test_win_rates_count_ties_half_with_a_wilson_interval():
    verdicts = _verdicts("Ana", ["first"] * 5 + ["second"] * 2 + ["same"] * 2 + ["neither"])
    first, second = win_rates(verdicts, NAMES)
    assert (first.wins, first.ties, first.losses, first.neither) == (5, 2, 2, 1)
    assert first.rate == pytest.approx(6 / 9) and second.rate == pytest.approx(3 / 9)
    assert first.neither_rate == pytest.approx(0.1)
    # Wilson, p = 6/9, n = 9, z = 1.96: (0.3542, 0.8794) worked out by hand
    assert first.interval == pytest.approx((0.3542, 0.8794), abs=5e-4)
    assert win_rates([], NAMES)[0].rate is None


def test_sides_are_stable_random_and_recorded_in_variant_terms():
    sides = [left_variant("rev", item, "Ana") for item in range(200)]
    assert sides == [left_variant("rev", item, "  ANA ") for item in range(200)]
    assert 70 < sum(sides) < 130  # both sides, about half each
    assert sides != [left_variant("rev", item, "Ben") for item in range(200)]
    balanced = balanced_sides("rev", list(range(101)), "Ana")
    assert sorted(balanced) == list(range(101)) and sum(balanced.values()) in (50, 51)
    assert balanced == balanced_sides("rev", list(range(101)), "ana")
    assert balanced != balanced_sides("rev", list(range(101)), "Ben")
    for left in (0, 1):
        for button in ("A", "B", "same", "neither"):
            assert button_for(choice_for(button, left), left) == button
    assert choice_for("A", 1) == "second" and choice_for("B", 1) == "first"


def test_position_bias():
    # left won: (first, left 0), (second, left 1), (first, left 0); right won: (second, left 0)
    verdicts = _verdicts("Ana", ["first", "second", "first", "second", "same"], [0, 1, 0, 0, 1])
    bias = position_bias(verdicts)
    assert (bias.left_wins, bias.decisive, bias.rate) == (3, 4, 0.75)
    assert "No sign" in bias.words


def test_disagreements_and_check_conflicts():
    verdicts = _verdicts("Ana", ANA) + _verdicts("Ben", BEN) + _verdicts("Cy", ["second"] * 10)
    # item 3: first, second, second (2 answers); item 5: second, same, second; 10: second, first, second
    # item 1: first, first, second; item 6,7: same, same, second; 8: neither, neither, second ...
    split = disagreements(verdicts)
    assert set(split) == set(range(1, 11)) - {4}
    assert majority(["first", "second"]) is None and majority(["first", "first", "same"]) == "first"
    items = [
        ReviewItem(1, 0, {}, ("x", "y"), (True, False)),  # checks prefer first; majority first: fine
        ReviewItem(3, 2, {}, ("x", "y"), (True, False)),  # majority second: conflict
        ReviewItem(8, 7, {}, ("x", "y"), (False, True)),  # majority neither: conflict
        ReviewItem(4, 3, {}, ("x", "y"), (True, True)),  # checks see no difference
    ]
    assert check_conflicts(verdicts, items) == [3, 8]


def test_exports_agree_with_the_summary():
    items = [ReviewItem(i + 1, i, {"menu_item": f"dish {i}"}, (f"a{i}", f"=b{i}")) for i in range(10)]
    verdicts = _verdicts("Ana", ANA) + _verdicts("Ben", BEN)
    summary = summarize_review(NAMES, items, verdicts)
    lines = export_jsonl("Menu", NAMES, items, verdicts).splitlines()
    head = json.loads(lines[0])
    assert head["agreement"]["cohen_kappa"] == round(0.41 / 0.71, 4)
    assert head["win_rates"][0]["win_rate"] == round(summary.wins[0].rate, 4)
    assert len(lines) == 21
    csv_text = export_csv(NAMES, items, verdicts)
    assert len(csv_text.splitlines()) == 21 and "=b" not in csv_text.replace("'=b", "")
    html = report_html("<Menu>", NAMES, items, verdicts, "Which reply <b>?")
    assert "&lt;Menu&gt;" in html and "<script" not in html and "0.58" in html
