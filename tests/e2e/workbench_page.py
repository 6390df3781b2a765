"""Page helpers for driving the workbench in a browser."""

from __future__ import annotations

import re
import time
from pathlib import Path

from app_runs import rerun_after, wait_quiet
from playwright.sync_api import Locator, Page, expect

from components.workspace.bridge import COOKIE

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
LONG = 240_000  # ms: first generation on a cold CI machine traces the model's graphs


STARTING = re.compile(r"Loading the model|Warming up the model")


def visit(page: Page, url: str) -> None:
    """Open an address of the app and wait until the page knows its browser and is idle.

    On a browser's first visit the page sets the browser's cookie and then reports it, which
    reruns the page once more; the cookie is there as soon as that rerun has been asked for.
    """
    page.goto(url)
    expect(page.get_by_test_id("stApp")).to_be_attached(timeout=LONG)
    deadline = time.monotonic() + LONG / 1000
    while not any(c["name"] == COOKIE for c in page.context.cookies()):
        assert time.monotonic() < deadline, f"the page never set its {COOKIE} cookie"
        page.wait_for_timeout(100)
    wait_idle(page)


def open_workbench(page: Page, url: str) -> None:
    visit(page, url)
    expect(page.get_by_role("button", name="Generate")).to_be_enabled(timeout=LONG)
    expect(page.get_by_text(STARTING)).to_have_count(0, timeout=LONG)  # the model has loaded and warmed up
    wait_idle(page)


def wait_idle(page: Page, timeout: int = LONG) -> None:
    """Wait until Streamlit has finished its runs (including one the page just asked for)."""
    wait_quiet(page, timeout)


def click(page: Page, target: Locator, timeout: int = LONG) -> None:
    """Click something that reruns the app (a button) and wait until that rerun has finished."""
    rerun_after(page, lambda: target.click(timeout=timeout), timeout)


def status(page: Page):
    return page.get_by_test_id("heatmap-status")


def generate(page: Page) -> None:
    button = page.get_by_role("button", name="Generate")
    expect(button).to_have_count(1, timeout=LONG)  # mid-rerun Streamlit can show a stale copy too
    wait_idle(page)
    click(page, button)
    expect(status(page)).to_be_visible(timeout=LONG)
    wait_idle(page)


def output_segment(page: Page, text: str):
    return page.locator("[data-testid=heatmap-text] .hm-seg.out", has_text=text).first


def prompt_values(page: Page) -> dict[str, float]:
    """Normalised score of each coloured prompt segment, by its text."""
    cells = page.locator("[data-testid=heatmap-text] .hm-seg:not(.out)")
    return dict(
        zip(
            cells.all_text_contents(),
            (float(v) for v in cells.evaluate_all("els => els.map(e => e.dataset.value)")),
        )
    )


def choose(page: Page, label: str, option: str) -> None:
    """Pick an option of a select box by typing it (Streamlit's select boxes are comboboxes)."""
    box = page.get_by_role("combobox", name=label)
    if box.input_value() == option:
        return
    box.click()
    box.fill(option)
    expect(page.get_by_role("option", name=option, exact=True)).to_be_visible()
    rerun_after(page, lambda: box.press("Enter"), LONG)


def choose_granularity(page: Page, name: str) -> None:
    choose(page, "Granularity", name)
    expect(status(page)).to_contain_text(re.compile(rf"· {name}"), timeout=LONG)
    wait_idle(page)


def set_text_area(page: Page, label: str, value: str) -> None:
    area = page.get_by_label(label, exact=True)
    area.fill(value)
    rerun_after(page, lambda: area.press("Control+Enter"), LONG)
