"""Blind review in a real browser: two reviewers in separate browser contexts judge the same 10
items of the menu data (fewshot-mistake vs fewshot-fixed) by clicks and by keys 1–4, one of them
refreshes mid-way and resumes, goes back and changes an answer; the results page and the JSONL
export then show exactly the aggregates worked out by hand (win rates, kappa, disagreements) and
the position bias of the sides the page recorded. Screenshots at 1440×900 and 1024×768."""

from __future__ import annotations

import json

import pytest
from app_runs import rerun_after, submit_form
from app_server import ROOT, start_app, stop_app
from page_checks import assert_clean, assert_plain_words, screenshot
from playwright.sync_api import Page, expect
from workbench_page import LONG, STARTING, visit, wait_idle

from salience.evaluation.review_stats import position_bias
from salience.evaluation.runs import parse_data, plan_evaluation, score
from salience.prompts.samples import find_sample
from salience.prompts.variant import Variant
from workspace.evaluations import create_evaluation, load_evaluation, record_cell
from workspace.reviews import create_review, items_from_evaluation, load_review
from workspace.store import Workspace

pytestmark = pytest.mark.browser

ROWS = ROOT / "data" / "eval" / "menu_recommendations.csv"
# Each reviewer's verdict per data row (0-based), in variant terms: first = fewshot-mistake.
ANA = ["second", "second", "second", "first", "first", "same", "second", "neither", "second", "first"]
BEN = ["second", "second", "first", "first", "first", "second", "second", "neither", "same", "first"]
BUTTON = {"same": "About the same", "neither": "Both unacceptable"}
STEP = 60_000  # ms: no model is involved; a rerun takes well under a second
KEY = {"A": "1", "B": "2", "same": "3", "neither": "4"}


def _outputs(row: dict) -> tuple[str, str]:
    item = row["menu_item"]
    fixed = "Avoid." if row["expected"].startswith("Avoid") else "Likely good."
    return (
        f"the {item} sounds like a treat for you.\nRecommendation: You have to try it.",
        f"the {item} is what you asked about.\nRecommendation: {fixed}",
    )


@pytest.fixture
def server(tmp_path):
    """A workspace with the menu evaluation (canned outputs) and a review of it; the app on it."""
    data = tmp_path / "data"
    data.mkdir()
    opened = Workspace.open(f"sqlite:///{data / 'workspace.sqlite3'}")
    lines = ROWS.read_text(encoding="utf-8").splitlines()[:11]
    dataset = parse_data("\n".join(lines) + "\n")
    samples = [find_sample(name) for name in ("fewshot-mistake", "fewshot-fixed")]
    variants = [Variant(s.name, s.template, dict(s.variables)) for s in samples]
    plan = plan_evaluation(variants, dataset, [], "expected")
    evaluation_id = create_evaluation(
        opened, "menu", plan, {"max_new_tokens": 40, "stop_sequences": ["\n\n"]}
    )
    texts = {}
    for row in range(10):
        for variant, output in enumerate(_outputs(dataset.rows[row])):
            record_cell(opened, evaluation_id, score(plan, row, variant, output))
            texts[output.split("\n")[0]] = (row, variant)
    stored = load_evaluation(opened, evaluation_id)
    review_id, uid = create_review(
        opened,
        "Menu advice: which reply?",
        tuple({"name": v.name, "template": v.template} for v in variants),
        items_from_evaluation(stored, 0, 1),
        "Which reply would you send to this customer?",
        ask_reason=True,
        per_item=2,
        evaluation_id=evaluation_id,
        seed=7,
    )
    opened.close()
    process, url = start_app(
        ROOT / "app.py", env={"GEMMA_WORKBENCH_DATA": str(data), "WORKBENCH_MODEL": "preset:/nonexistent"}
    )
    yield url, data, review_id, uid, texts
    stop_app(process)


def _side(page: Page, label: str) -> str:
    return page.locator(f".st-key-review-side-{label}").inner_text()


def _which(page: Page, texts: dict) -> tuple[int, int]:
    """(row, variant shown as A) of the item on the page."""
    shown = _side(page, "A")
    for first_line, (row, variant) in texts.items():
        if first_line in shown:
            return row, variant
    raise AssertionError(f"unknown output on side A: {shown!r}")


def _answer(page: Page, plan: list[str], texts: dict, by_key: bool) -> None:
    row, on_left = _which(page, texts)
    choice = plan[row]
    button = BUTTON.get(choice) or ("A is better" if (choice == "first") == (on_left == 0) else "B is better")
    clicked = {
        "A is better": "A",
        "B is better": "B",
        "About the same": "same",
        "Both unacceptable": "neither",
    }[button]
    if by_key:
        page.evaluate("document.activeElement && document.activeElement.blur()")  # keys go to the page
        rerun_after(page, lambda: page.keyboard.press(KEY[clicked]), STEP)
    else:
        rerun_after(page, lambda: page.get_by_role("button", name=button).click(), STEP)


def _start(page: Page, url: str, uid: str, name: str, items: int = 10) -> None:
    visit(page, f"{url}/review?r={uid}")
    expect(page.get_by_text("Type your name in the box on the left")).to_be_visible(timeout=STEP)
    box = page.get_by_test_id("stSidebar").get_by_label("Your name", exact=True)
    box.fill(name)
    rerun_after(page, lambda: box.press("Enter"), STEP)
    expect(page.get_by_text(f"Item 1 of {items}")).to_be_visible(timeout=STEP)


def test_two_reviewers_blind(browser, server):
    url, data, review_id, uid, texts = server
    ana = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    ben = browser.new_context(viewport={"width": 1024, "height": 768}).new_page()
    _start(ana, url, uid, "Ana")
    _start(ben, url, uid, "Ben")
    wait_idle(ben)
    last = ben.get_by_role("button", name="Both unacceptable").bounding_box()  # the fourth answer
    assert last and last["y"] + last["height"] <= 768, f"answers below the fold at 1024×768: {last}"
    text = assert_plain_words(ana, "review, first item")
    assert "fewshot" not in text and "Which reply would you send to this customer?" in text  # blind
    assert_clean(ana, "review, first item")
    screenshot(ana, "review-item")

    for n in range(5):  # Ana: five answers by clicks, then a refresh
        _answer(ana, ANA, texts, by_key=False)
        expect(ana.get_by_text(f"You have answered {n + 1} of 10")).to_be_visible(timeout=STEP)
    ana.reload()
    expect(ana.get_by_text("Item 6 of 10")).to_be_visible(timeout=STEP)  # resumed where she left off
    wait_idle(ana)
    for n in range(10):  # Ben, meanwhile, on the same items by keys 1–4 (Ana's answer on his first)
        _answer(ben, ANA if n == 0 else BEN, texts, by_key=True)
    expect(ben.get_by_text("You have answered all 10 items")).to_be_visible(timeout=STEP)
    screenshot(ben, "review-done")
    # Ben goes back to his first item and changes the answer there
    rerun_after(ben, lambda: ben.get_by_role("button", name="Back to the last item").click(), STEP)
    for _ in range(9):
        rerun_after(ben, lambda: ben.get_by_role("button", name="← Back").click(), STEP)
    expect(ben.get_by_text("Item 1 of 10")).to_be_visible(timeout=STEP)
    expect(ben.get_by_text("saved. Click another to change it")).to_be_visible()
    ben.get_by_label("Why? (optional)").fill("Tells me to <b>avoid</b> — **right**")
    _answer(ben, BEN, texts, by_key=False)

    for n in range(5, 10):
        _answer(ana, ANA, texts, by_key=n % 2 == 0)
    expect(ana.get_by_text("You have answered all 10 items")).to_be_visible(timeout=STEP)

    opened = Workspace.open(f"sqlite:///{data / 'workspace.sqlite3'}")
    stored = load_review(opened, review_id)
    opened.close()
    assert len(stored.verdicts) == 20  # one per reviewer and item, the changed answer replaced
    by_row = {item.id: item.row for item in stored.items}
    for verdict in stored.verdicts:
        plan = ANA if verdict.reviewer == "Ana" else BEN
        assert verdict.choice == plan[by_row[verdict.item]], (verdict, by_row[verdict.item])
    bias = position_bias(stored.verdicts)  # the sides the page drew and recorded

    results = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    visit(results, f"{url}/review?r={uid}&view=results")
    expect(results.get_by_role("heading", name="Which variant do reviewers prefer?")).to_be_visible(
        timeout=STEP
    )
    shown = " ".join(assert_plain_words(results, "review results").split())
    assert_clean(results, "review results", max_height=20_000)
    # hand-worked: mistake wins 7, fixed 9, 2 ties, 2 both unacceptable -> 8/18 and 10/18
    assert "fewshot-mistake wins 44%" in shown and "fewshot-fixed wins 56%" in shown, shown
    assert "both unacceptable in 10% of answers" in shown
    assert "Agreement (Cohen's kappa): 0.55" in shown  # (0.7 − 0.34) / (1 − 0.34)
    assert f"won {bias.left_wins} of {bias.decisive} times" in shown
    assert "3 item(s) where reviewers disagree" in shown
    assert "1 where reviewers and the automatic checks disagree" in shown
    screenshot(results, "review-results")

    with results.expect_download() as download:
        results.get_by_role("button", name="JSONL").click()
    lines = download.value.path().read_text(encoding="utf-8").splitlines()
    summary = json.loads(lines[0])
    assert summary["agreement"]["cohen_kappa"] == round(0.36 / 0.66, 4)
    assert summary["agreement"]["krippendorff_alpha"] == round(1 - 19 * 6 / 262, 4)
    assert [w["win_rate"] for w in summary["win_rates"]] == [round(8 / 18, 4), round(10 / 18, 4)]
    assert summary["position_bias"]["left_wins"] == bias.left_wins
    assert summary["position_bias"]["decisive_verdicts"] == bias.decisive == 16
    assert len(summary["disagreements"]) == 3 and len(summary["check_conflicts"]) == 1
    reasons = [json.loads(line)["reason"] for line in lines[1:]]
    assert "Tells me to <b>avoid</b> — **right**" in reasons


@pytest.fixture
def tiny_server(tmp_path, tiny_model_spec):
    """A two-item review and the app on a tiny model, so replies can be explained."""
    data = tmp_path / "data"
    data.mkdir()
    opened = Workspace.open(f"sqlite:///{data / 'workspace.sqlite3'}")
    dataset = parse_data("\n".join(ROWS.read_text(encoding="utf-8").splitlines()[:3]) + "\n")
    samples = [find_sample(name) for name in ("fewshot-mistake", "fewshot-fixed")]
    variants = [Variant(s.name, s.template, dict(s.variables)) for s in samples]
    plan = plan_evaluation(variants, dataset, [], "expected")
    evaluation_id = create_evaluation(opened, "menu", plan)
    for row in range(2):
        for variant, output in enumerate(_outputs(dataset.rows[row])):
            record_cell(opened, evaluation_id, score(plan, row, variant, output))
    _, uid = create_review(
        opened,
        "Why check",
        tuple({"name": v.name, "template": v.template} for v in variants),
        items_from_evaluation(load_evaluation(opened, evaluation_id), 0, 1),
        per_item=1,
    )
    opened.close()
    process, url = start_app(
        ROOT / "app.py", env={"GEMMA_WORKBENCH_DATA": str(data), "WORKBENCH_MODEL": tiny_model_spec}
    )
    yield url, uid
    stop_app(process)


def test_why_opens_only_after_the_answer(browser, tiny_server):
    url, uid = tiny_server
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    _start(page, url, uid, "Ana", items=2)
    expect(page.get_by_text("Why does it say that?")).to_have_count(0)  # not before the answer
    rerun_after(page, lambda: page.get_by_role("button", name="Both unacceptable").click(), STEP)
    rerun_after(page, lambda: page.get_by_role("button", name="← Back").click(), STEP)
    expect(page.get_by_text("Why does it say that?")).to_be_visible(timeout=STEP)
    page.get_by_text("Explain reply A", exact=True).click()
    expect(page.get_by_test_id("heatmap-text")).to_be_visible(timeout=LONG)
    wait_idle(page)
    expect(page.get_by_text("Reading:")).to_be_visible()
    assert_plain_words(page, "review, why")
    screenshot(page, "review-why", focus=page.get_by_text("Why does it say that?"))

    visit(page, f"{url}/review?r=0123456789abcdef0123456789abcdef")  # a link to no review
    expect(page.get_by_text("This review link does not lead to a review here")).to_be_visible(timeout=STEP)


def test_a_review_is_made_from_an_evaluation_and_listed_on_history(browser, tiny_server):
    url, _ = tiny_server
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    visit(page, f"{url}/evaluate")
    # While the model loads and warms up, a status fragment reruns every second; a form submitted
    # in that window can be lost on a busy machine (seen once in a fresh-clone run): start after it.
    expect(page.get_by_text(STARTING)).to_have_count(0, timeout=LONG)
    wait_idle(page)
    page.get_by_role("tab", name="Saved evaluations").click()
    rerun_after(
        page,
        lambda: page.get_by_test_id("stTabs").get_by_role("button", name="Open", exact=True).click(),
        STEP,
    )
    page.get_by_role("tab", name="Evaluation", exact=True).click()
    page.get_by_text("Ask reviewers to compare two variants (blind)").click()
    page.get_by_label("Review name").fill("Made on Evaluate")
    submit_form(page, page.get_by_role("button", name="Create review"), STEP)
    expect(page.get_by_text("Review created. Send this link to your reviewers:")).to_be_visible(timeout=STEP)
    link = page.get_by_test_id("stCode").last.inner_text().strip()
    assert "/review?r=" in link
    visit(page, f"{url}/history")
    page.get_by_role("tab", name="Reviews").click()
    expect(page.get_by_text("Made on Evaluate")).to_be_visible(timeout=STEP)
    expect(page.get_by_text("2 items · 0 answers from 0 reviewer(s)").first).to_be_visible()
    visit(page, link)
    expect(page.get_by_role("heading", name="Made on Evaluate")).to_be_visible(timeout=STEP)
