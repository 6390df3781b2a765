"""Every page as a reviewer sees it, in headless Chromium on the embedded model.

A fresh server is opened by a deep link first (a saved comparison, later a run after a restart):
the app's own navigation, the wide layout and the content must show, never Streamlit's file list
("app / compare / history / workbench"). On every page and state (compare with three panes,
Present, workbench explained, history with an opened run, links to things that do not exist) the
page must show no developer-only text and stay a sane height; each state is saved as screenshots
at 1440×900 and 1024×768 (artifacts/screens, copied to docs/ by scripts/update_screenshots.sh).
"""

from __future__ import annotations

import pytest
from app_server import ROOT, start_app, stop_app
from page_checks import assert_clean, assert_navigation, assert_plain_words, screenshot
from playwright.sync_api import expect
from workbench_page import (
    LONG,
    choose_granularity,
    generate,
    open_workbench,
    output_segment,
    status,
    wait_idle,
)

from salience.prompts.samples import load_samples
from salience.prompts.variant_comparison import Variant
from workspace.store import Workspace

STORY = ("fewshot-mistake", "fewshot-fixed", "fewshot-constitution")
VIEWPORT = {"width": 1440, "height": 900}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("pages-clean-data")


def store(data_dir) -> Workspace:
    return Workspace.open(f"sqlite:///{data_dir / 'workspace.sqlite3'}")


@pytest.fixture(scope="module")
def comparison_id(data_dir):
    """A comparison of the seed's three prompts saved through the store (no outputs yet: the
    page generates them), before the server starts."""
    samples = {example.name: example for example in load_samples()}
    variants = [Variant(name, samples[name].template, dict(samples[name].variables)) for name in STORY]
    opened = store(data_dir)
    try:
        return opened.save({"state": {}, "variants": [variant.to_json() for variant in variants]})
    finally:
        opened.close()


def test_deep_link_to_a_comparison_first_and_every_page_clean(browser, data_dir, comparison_id):
    process, url = start_app(ROOT / "serve.py", env={"GEMMA_WORKBENCH_DATA": str(data_dir)})
    try:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(f"{url}/compare?c={comparison_id}")  # the server's very first visitor
        expect(page.get_by_test_id("heatmap-text")).to_have_count(3, timeout=LONG)
        wait_idle(page)
        assert_navigation(page, "compare, opened by a link on a fresh server")
        expect(page.get_by_test_id("heatmap-status").first).to_contain_text("Recommendation")
        assert_clean(page, "compare with three panes")
        words = assert_plain_words(page, "compare with three panes")
        assert "Bars to the right: the answer leans on that part more in B" in words
        assert "What changed from A (fewshot-mistake) to B (fewshot-fixed)" in words
        screenshot(page, "compare", focus=page.get_by_test_id("shared-legend"))
        screenshot(page, "compare-differences", focus=page.get_by_role("heading", name="Differences"))

        page.get_by_role("button", name="Present ▶").click()
        expect(page.get_by_text(f"1 / 3 · {STORY[0]}")).to_be_visible(timeout=LONG)
        wait_idle(page)
        expect(page.get_by_test_id("heatmap-text")).to_have_count(1)
        assert_clean(page, "compare, Present mode")
        assert_plain_words(page, "compare, Present mode")
        screenshot(page, "present")
        page.get_by_role("button", name="Exit presentation").click()
        expect(page.get_by_role("button", name="Present ▶")).to_be_visible(timeout=LONG)

        missing = context.new_page()
        missing.goto(f"{url}/compare?c=0123456789ab")
        expect(missing.get_by_text("No saved comparison")).to_be_visible(timeout=LONG)
        expect(missing.get_by_role("button", name="Continue without the link")).to_be_visible()
        assert_navigation(missing, "compare, a link to a comparison that does not exist")
        assert_clean(missing, "compare, a link to a comparison that does not exist")
        missing.close()

        open_workbench(page, url)
        assert_navigation(page, "workbench")
        assert_clean(page, "workbench before Generate")
        generate(page)
        output_segment(page, "Recommendation").click()
        expect(status(page)).to_contain_text("Recommendation", timeout=LONG)
        wait_idle(page)
        choose_granularity(page, "sentences")
        assert_clean(page, "workbench, explained")
        assert_plain_words(page, "workbench, explained")
        screenshot(page, "workbench")
        context.close()
    finally:
        stop_app(process)


def test_deep_link_to_a_run_first_after_a_restart(browser, data_dir):
    opened = store(data_dir)
    try:
        explained = [run for run in opened.runs() if opened.salience_for_run(run.id)]
    finally:
        opened.close()
    if not explained:
        pytest.fail("no explained run in the workspace: the walk through the pages above did not finish")
    run = explained[0]  # the newest: the workbench's
    process, url = start_app(ROOT / "serve.py", env={"GEMMA_WORKBENCH_DATA": str(data_dir)})
    try:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(f"{url}/history?run={run.id}")  # the restarted server's very first visitor
        expect(page.get_by_text(f"Run {run.id}")).to_be_visible(timeout=LONG)
        expect(page.get_by_test_id("heatmap-text")).to_be_visible(timeout=LONG)
        wait_idle(page)
        assert_navigation(page, "history, opened by a link on a fresh server")
        assert_clean(page, "history with an opened run")
        assert_plain_words(page, "history with an opened run")
        screenshot(page, "history", focus=page.get_by_text(f"Run {run.id}"))

        page.goto(f"{url}/history?run=999999")
        expect(page.get_by_text("There is no run '999999'")).to_be_visible(timeout=LONG)
        wait_idle(page)
        assert_navigation(page, "history, a link to a run that does not exist")
        assert_clean(page, "history, a link to a run that does not exist")
        page.context.close()
    finally:
        stop_app(process)


def test_what_counts_as_engineer_text():
    from page_checks import engineer_text

    engineer = [
        "Computed with Grad L2 at bfloat16",
        "Top 3 by size; rank correlation +0.31.",
        "Strongest colour = 1.21",
        "total 0.075 · per token 0.000 (sign ignored)",
        "stop: stop_sequence",
        "95% interval (Wilson)",
        "fewshot-fixed 0 / 0 · 0% · 0% – 100%",
        "12 of 68 generations done · about 2248 s left",
        "18. “Taste-likes: I've…” · {menu_item}",
        "a change of -0.0312 in B",
        "Deletion took 3.2 s · 0.41 nats",
    ]
    for line in engineer:
        assert engineer_text(line), line
    plain = (
        "Written in 12.3 s · stopped at the stop text\n"
        "12 of 68 generations done · about 37 min left\n"
        "Without this line the recommendation changes from ‘You have to try it.’ to ‘Avoid.’\n"
        "fewshot-fixed · not run yet\nLongest answer (tokens)\nshare of the colour 42%\n"
        "Deletion removed each of the 22 prompt sentences in turn\n"
        "Recommendation: {{ literal braces }} and 120 sentences"
    )
    assert engineer_text(plain) == []


def test_what_counts_as_developer_text():
    from page_checks import developer_text

    dump = "DeltaGenerator(_root_container=0, _parent=None)\nadd_rows\tConcatenate a dataframe"
    assert len(developer_text(dump)) >= 2
    assert developer_text("Traceback (most recent call last):\n  KeyError: 'x'")
    assert developer_text("<salience.core.types.Generation object at 0x7f3a2c1b>")
    assert developer_text("Reading:\nNone\n") and developer_text("Explaining “None”")
    assert developer_text("score: NaN")
    fine = "None of the examples mention cheese.\nRecommendation: Avoid.\nNo saved comparison 'ab'."
    assert developer_text(fine) == []
