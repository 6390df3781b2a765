"""Evaluate in a real browser on the embedded model: pasted rows, a run that fills the grid row by
row, the summary with intervals and flips, the why chart, a refresh that loses nothing, and
screenshots at 1440×900 and 1024×768."""

from __future__ import annotations

import pytest
from app_runs import rerun_after
from app_server import ROOT, start_app, stop_app
from page_checks import assert_clean, assert_navigation, assert_plain_words, screenshot
from playwright.sync_api import expect
from workbench_page import LONG, open_workbench, wait_idle

from workspace.evaluations import evaluations
from workspace.store import Workspace

ROWS = ROOT / "data" / "eval" / "menu_recommendations.csv"


@pytest.fixture
def server(tmp_path):
    data = tmp_path / "data"
    process, url = start_app(ROOT / "serve.py", env={"GEMMA_WORKBENCH_DATA": str(data)})
    yield url, data
    stop_app(process)


def test_evaluate_menu_rows(browser, server):
    url, data = server
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    open_workbench(page, url)
    page.get_by_role("link", name="Evaluate").first.click()
    expect(page.get_by_role("heading", name="Evaluate a prompt across many inputs")).to_be_visible(
        timeout=LONG
    )
    wait_idle(page)
    assert_navigation(page, "evaluate")
    expect(page.get_by_role("button", name="Run 68 generations")).to_be_enabled(timeout=LONG)
    assert_plain_words(page, "evaluate, set up")
    screenshot(page, "evaluate-setup")

    lines = ROWS.read_text(encoding="utf-8").splitlines()
    page.get_by_text("Paste", exact=True).click()
    wait_idle(page)
    box = page.get_by_label("Paste rows (CSV or tab-separated with a header line, or JSONL)")
    box.fill("\n".join(lines[:7]))  # the header and six rows: three to avoid, three to enjoy
    rerun_after(page, lambda: box.press("Control+Enter"), LONG)
    run = page.get_by_role("button", name="Run 12 generations")
    expect(run).to_be_enabled(timeout=LONG)
    run.click()
    expect(page.get_by_text("generations done")).to_be_visible(timeout=LONG)
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0, timeout=10 * LONG)
    # One section (a rerun may briefly keep the previous run's copy on the page while it draws).
    expect(page.get_by_role("heading", name="Why, across the dataset")).to_have_count(1, timeout=LONG)
    expect(page.get_by_role("heading", name="Why, across the dataset")).to_be_visible(timeout=LONG)
    assert_clean(page, "evaluate, finished")
    assert_plain_words(page, "evaluate, finished")
    expect(page.get_by_text("flipped row(s)")).to_be_visible()
    screenshot(
        page,
        "evaluate-results",
        focus=page.get_by_role("heading", name="Evaluate a prompt across many inputs"),
    )
    screenshot(page, "evaluate-why", focus=page.get_by_role("heading", name="Why, across the dataset"))

    saved = Workspace.open(f"sqlite:///{data / 'workspace.sqlite3'}")
    (row,) = evaluations(saved)
    assert row.done == row.total == 12 and row.status == "finished"
    saved.close()

    page.reload()  # a refresh: the evaluation is listed and reopens without recomputing
    expect(page.get_by_role("heading", name="Evaluate a prompt across many inputs")).to_be_visible(
        timeout=LONG
    )
    page.get_by_role("tab", name="Saved evaluations").click()
    expect(page.get_by_text("12/12 · finished")).to_be_visible(timeout=LONG)
    page.get_by_test_id("stTabs").get_by_role("button", name="Open", exact=True).click()
    wait_idle(page)
    page.get_by_role(
        "tab", name="Evaluation", exact=True
    ).click()  # the opened evaluation shows on the first tab
    # One section (a rerun may briefly keep the previous run's copy on the page while it draws).
    expect(page.get_by_role("heading", name="Why, across the dataset")).to_have_count(1, timeout=LONG)
    expect(page.get_by_role("heading", name="Why, across the dataset")).to_be_visible(timeout=LONG)
    assert_clean(page, "evaluate, reopened")
