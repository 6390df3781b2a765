"""Page helpers for driving the workbench in a browser."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
LONG = 240_000  # ms: first generation on a cold CI machine traces the model's graphs


STARTING = re.compile(r"Loading the model|Warming up the model")


def open_workbench(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_role("button", name="Generate")).to_be_enabled(timeout=LONG)
    expect(page.get_by_text(STARTING)).to_have_count(0, timeout=LONG)  # the model has loaded and warmed up
    wait_idle(page)


def wait_idle(page: Page, timeout: int = LONG) -> None:
    """Wait until Streamlit has finished its rerun."""
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=timeout)


def status(page: Page):
    return page.get_by_test_id("heatmap-status")


def generate(page: Page) -> None:
    button = page.get_by_role("button", name="Generate")
    expect(button).to_have_count(1, timeout=LONG)  # mid-rerun Streamlit can show a stale copy too
    wait_idle(page)
    button.click()
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
    box.press("Enter")
    wait_idle(page)


def choose_granularity(page: Page, name: str) -> None:
    choose(page, "Granularity", name)
    expect(status(page)).to_contain_text(re.compile(rf"· {name}"), timeout=LONG)
    wait_idle(page)


def set_text_area(page: Page, label: str, value: str) -> None:
    area = page.get_by_label(label, exact=True)
    area.fill(value)
    area.press("Control+Enter")
    wait_idle(page)
