"""Deletion on the workbench in a real browser, on the embedded model.

Click the Recommendation line: the first colours (the Deletion estimate) come at once and Deletion
checks them in the background, saying something only if it moves the strongest part (then the
whole page follows it); "What if I delete this?" on the top segment regenerates without it and
shows both outputs with a word diff; Deletion chosen under Advanced recolours the prompt.
Screenshots at 1440×900 and 1024×768 go to artifacts/screens/.
"""

from __future__ import annotations

import re

from app_runs import rerun_after
from page_checks import assert_plain_words, next_frame, screenshot
from playwright.sync_api import expect
from workbench_page import (
    ARTIFACTS,
    LONG,
    generate,
    open_workbench,
    output_segment,
    status,
    wait_idle,
)

SCREENS = ARTIFACTS / "screens"
# The agreement line at the top of the view, below Streamlit's sticky header.
SCROLL_TO_AGREEMENT = """() => {
  const el = document.querySelector('.st-key-deletion-agreement');
  el.style.scrollMarginTop = '90px';
  el.scrollIntoView({block: 'start'});
}"""


def shoot(page, name: str) -> None:
    """The agreement line and the what-if result in view, at both sizes."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1440, 900), (1024, 768)):
        page.set_viewport_size({"width": width, "height": height})
        next_frame(page)
        page.evaluate(SCROLL_TO_AGREEMENT)
        next_frame(page)
        page.screenshot(path=str(SCREENS / f"{name}-{width}x{height}.png"))


def test_agreement_line_and_what_if_i_delete_this(browser, workbench_url):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    open_workbench(page, workbench_url)
    generate(page)
    output_segment(page, "Recommendation").click()
    expect(status(page)).to_contain_text("Explaining: “Recommendation: You have to try it.”", timeout=LONG)
    wait_idle(page)

    expect(status(page)).to_contain_text("Deletion estimate · sentences")
    page.screenshot(path=str(SCREENS / "workbench-first-colours-1440x900.png"))
    expect(page.get_by_text("Deletion is checking these colours")).to_have_count(0, timeout=LONG)
    wait_idle(page)
    agreement = page.locator(".st-key-deletion-agreement")
    expect(agreement).not_to_contain_text("Deletion check:")  # no agreement line for the default
    reading = page.get_by_text(re.compile(r"^Reading: By Deletion")).inner_text()
    if "A closer check moved the strongest part" in agreement.inner_text():  # said once, page follows
        assert reading.startswith("Reading: By Deletion,"), reading
        expect(status(page)).to_contain_text("· Deletion ·")
    else:
        assert reading.startswith("Reading: By Deletion estimate,"), reading
    expect(page.get_by_test_id("heatmap-legend")).to_contain_text("supported")

    # Delete the first example's Recommendation line: what becomes of the recommendation?
    box = page.get_by_role("combobox", name="Prompt segment to delete")
    if "first example's Recommendation line" not in box.input_value():  # else already the default
        box.click()
        box.fill("first example's Recommendation line")
        option = page.get_by_role("option").filter(has_text="first example's Recommendation line").first
        expect(option).to_be_visible()
        rerun_after(page, option.click, LONG)
    page.get_by_role("button", name="What if I delete this?").click()
    result = page.locator(".st-key-what-if-result")
    expect(result).to_be_visible(timeout=LONG)
    expect(result).to_contain_text(
        re.compile(
            r"Without this line the (recommendation changes from ‘You have to try it\.’ to "
            r"|new output has no Recommendation line; it reads ‘)"
        )
    )
    expect(page.get_by_test_id("what-if-old")).to_have_text("Recommendation: You have to try it.")
    expect(page.get_by_test_id("what-if-new")).to_be_visible()
    wait_idle(page)
    page.get_by_text("The whole output, before and after").click()  # the full diff, collapsed
    expect(result).to_contain_text("Output with the whole prompt")
    expect(result).to_contain_text("Output without “")
    diff = page.get_by_test_id("what-if-diff")
    expect(diff).to_be_visible()
    assert diff.inner_text().strip()
    expect(result).to_contain_text(re.compile(r"did not change|compared with the full prompt's output"))
    wait_idle(page)
    assert_plain_words(page, "workbench with the Deletion check and a what-if")
    expect(page.get_by_test_id("stException")).to_have_count(0)
    shoot(page, "workbench-deletion")
    screenshot(page, "workbench-what-if", focus=result)

    page.set_viewport_size({"width": 1440, "height": 900})
    advanced = page.get_by_test_id("stExpander").filter(has=page.get_by_text("Segment score"))
    advanced.locator("summary").click()  # the methods other than the default
    advanced.get_by_text("Deletion — what removing it does").click()
    expect(status(page)).to_contain_text("· Deletion ·", timeout=LONG)
    wait_idle(page)
    expect(page.get_by_test_id("heatmap-legend")).to_contain_text("supported")
    expect(page.get_by_text(re.compile(r"^Reading: By Deletion"))).to_be_visible()
    page.screenshot(path=str(SCREENS / "workbench-deletion-colours-1440x900.png"), full_page=True)
    page.close()
