"""The workspace in a real browser: text typed but not committed survives a refresh; edits and
runs survive a server restart; two reviewers note the same run at the same time."""

from __future__ import annotations

import pytest
from app_runs import rerun_after, runs_of, wait_rerun
from app_server import ROOT, start_app, stop_app
from playwright.sync_api import expect
from workbench_page import LONG, click, generate, open_workbench, set_text_area, visit

from workspace.store import Workspace


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def test_refresh_and_restart_lose_nothing(browser, data_dir, tiny_model_spec):
    # The tiny model: what this checks is the workspace, not the model's words (and it restarts).
    env = {"GEMMA_WORKBENCH_DATA": str(data_dir), "WORKBENCH_MODEL": tiny_model_spec}
    process, url = start_app(ROOT / "serve.py", env=env)
    try:
        context = browser.new_context(viewport={"width": 1500, "height": 1200})
        page = context.new_page()
        open_workbench(page, url)
        set_text_area(page, "food_likes", "Blue cheese")
        generate(page)
        output = page.get_by_test_id("heatmap-text").text_content()
        # Typed but never committed (no blur, no Ctrl+Enter), then the page is refreshed once the
        # typed text has reached the server as a draft (the page sends it after a short pause).
        menu_item = page.get_by_label("menu_item", exact=True)
        rerun_after(page, lambda: menu_item.fill("Omelette du fromage"), LONG)
        page.reload()
        open_workbench(page, url)
        expect(page.get_by_label("menu_item", exact=True)).to_have_value("Omelette du fromage", timeout=LONG)
        expect(page.get_by_label("food_likes", exact=True)).to_have_value("Blue cheese")
    finally:
        stop_app(process)

    process, url = start_app(ROOT / "serve.py", env=env)  # a server restart
    try:
        open_workbench(page, url)
        expect(page.get_by_label("menu_item", exact=True)).to_have_value("Omelette du fromage", timeout=LONG)
        expect(page.get_by_label("food_likes", exact=True)).to_have_value("Blue cheese")
        click(page, page.get_by_role("link", name="History").first)
        expect(page.get_by_text("runs, newest first")).to_be_visible(timeout=LONG)
        saved = Workspace.open(f"sqlite:///{data_dir / 'workspace.sqlite3'}")
        runs = saved.runs()  # the first Generate, then auto re-run for the restored menu_item
        assert [r.variables["menu_item"] for r in runs] == ["Omelette du fromage", "Quiche Lorraine"]
        run = runs[-1]
        assert run.output and run.output in output and run.variables["food_likes"] == "Blue cheese"
        assert saved.salience_for_run(run.id)

        # Two reviewers open the run and save a note at the same moment.
        pages = []
        for name in ("Ana", "Ben"):
            reviewer = browser.new_context(viewport={"width": 1500, "height": 1200}).new_page()
            visit(reviewer, f"{url}/history?run={run.id}")
            expect(reviewer.get_by_text(f"Run {run.id}")).to_be_visible(timeout=LONG)
            name_box = reviewer.get_by_role("textbox", name="Your name (for review notes)")
            name_box.fill(name)
            rerun_after(reviewer, lambda box=name_box: box.press("Enter"), LONG)
            expect(reviewer.get_by_text(f"As {name}")).to_be_visible()
            expect(name_box).to_have_value(name)
            note = reviewer.get_by_label("Note", exact=True)
            note.fill(f"{name}: the answer ignores the allergy.")
            expect(note).to_have_value(f"{name}: the answer ignores the allergy.")
            pages.append(reviewer)
        buttons = [p.get_by_role("button", name="Save note") for p in pages]
        for button in buttons:
            expect(button).to_be_enabled()
        asked = [runs_of(p).requested for p in pages]
        for button in buttons:
            button.click(no_wait_after=True)
        for name, reviewer, before in zip(("Ana", "Ben"), pages, asked, strict=True):
            wait_rerun(reviewer, before, LONG)  # the save's rerun has finished
            expect(reviewer.get_by_text(f"{name}: the answer ignores the allergy.")).to_be_visible()
            expect(reviewer.get_by_text(f"As {name}")).to_be_visible()  # the name is still there
        for reviewer in pages:
            reviewer.reload()
            expect(reviewer.get_by_text("Ana: the answer ignores the allergy.")).to_be_visible(timeout=LONG)
            expect(reviewer.get_by_text("Ben: the answer ignores the allergy.")).to_be_visible(timeout=LONG)
        pages[0].screenshot(path=str(ROOT / "artifacts" / "history.png"))
        assert sorted(n.reviewer for n in saved.notes(run_id=run.id)) == ["Ana", "Ben"]
        saved.close()
        context.close()
    finally:
        stop_app(process)
