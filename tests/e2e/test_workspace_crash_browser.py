"""A server killed with SIGKILL while a generation streams: the edit committed by the click that
started the generation is already in the workspace (it is written before the long work starts)."""

from __future__ import annotations

import signal

from app_runs import rerun_after
from app_server import ROOT, start_app
from playwright.sync_api import expect
from workbench_page import LONG, open_workbench

from workspace.store import Workspace


def test_a_committed_edit_survives_kill_9_during_generation(browser, tmp_path, tiny_model_spec):
    data_dir = tmp_path / "data"
    env = {"GEMMA_WORKBENCH_DATA": str(data_dir), "WORKBENCH_MODEL": tiny_model_spec}  # the workspace's test
    process, url = start_app(ROOT / "serve.py", env=env)
    try:
        page = browser.new_context(viewport={"width": 1500, "height": 1200}).new_page()
        open_workbench(page, url)
        page.get_by_text("Generation settings", exact=True).click()
        length = page.get_by_label("Longest answer (tokens)", exact=True)
        length.fill("512")
        rerun_after(page, lambda: length.press("Enter"), LONG)  # committed and saved
        # Typed, then Generate at once: the click commits the text area (its draft is dropped, as
        # the bridge drops a pending draft on any click), and the same run starts generating.
        page.get_by_label("food_likes", exact=True).fill("Goat cheese")
        page.get_by_role("button", name="Generate").click()
        expect(page.get_by_text("▌")).to_be_visible(timeout=LONG)  # tokens are streaming
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    saved = Workspace.open(f"sqlite:///{data_dir / 'workspace.sqlite3'}")
    try:
        assert not [r for r in saved.runs() if r.variables.get("food_likes") == "Goat cheese"], (
            "the generation finished before the kill; the test proves nothing"
        )
        versions = saved.versions("fewshot-mistake")
        assert any(v.variables.get("food_likes") == "Goat cheese" for v in versions)
        [browser_state] = [saved.load_state(b) for b in _browsers(saved)]
        assert browser_state["state"]["variables"]["food_likes"] == "Goat cheese"
    finally:
        saved.close()


def _browsers(saved: Workspace) -> list[str]:
    from sqlalchemy import text

    with saved.engine.connect() as connection:
        return [row[0] for row in connection.execute(text("SELECT id FROM browsers"))]
