"""The workbench in a real headless Chromium on the embedded Gemma 3 270M.

Walks the codelab's story: generate on fewshot-mistake, click the Recommendation
line (a click explains its whole sentence: sentences are the default unit), see the
first example light up and the reading name it, fix it to "Avoid." and see the output
and the colours change. No engineer term shows outside "Details for engineers".
"""

from __future__ import annotations

import re

from page_checks import SCREENS, assert_clean, assert_plain_words, screenshot
from playwright.sync_api import expect
from workbench_page import (
    ARTIFACTS,
    LONG,
    generate,
    open_workbench,
    output_segment,
    prompt_values,
    set_text_area,
    status,
    wait_idle,
)


def test_codelab_story(browser, workbench_url):
    page = browser.new_page(viewport={"width": 1500, "height": 1200})
    open_workbench(page, workbench_url)
    generate(page)
    expect(status(page)).to_contain_text("Explaining: the whole output")
    screenshot(page, "workbench-before-click", focus=status(page))
    recommendation = output_segment(page, "Recommendation")
    expect(recommendation).to_be_visible()
    recommendation.click()  # one click on one word explains its whole sentence
    expect(status(page)).to_contain_text("Explaining: “Recommendation: You have to try it.”", timeout=LONG)
    expect(status(page)).to_contain_text("· sentences")
    wait_idle(page)
    words = assert_plain_words(page, "workbench after one click on Recommendation")
    reading = re.search(r"Reading:\s*(By .*)", words).group(1)
    assert re.search(r"the first example's (Recommendation|Analysis) line", reading), reading
    assert "left out" not in words  # copies are named, not hidden
    screenshot(page, "workbench-after-click", focus=status(page))
    values = prompt_values(page)
    strongest = max(values, key=lambda text: abs(values[text]))
    first_example = (
        "Analysis: it has cooked onions in it, which you don't like.",
        "Recommendation: You have to try it.",
    )
    assert strongest.strip() in first_example, strongest
    page.screenshot(path=str(ARTIFACTS / "workbench-mistake.png"), full_page=True)

    set_text_area(page, "first_recommendation", "Avoid.")
    expect(output_segment(page, "Avoid")).to_be_visible(timeout=LONG)
    # The same part of the output stays selected although the text before it changed.
    expect(status(page)).to_contain_text("Explaining: “Recommendation: Avoid.”", timeout=LONG)
    after = prompt_values(page)
    assert after != values
    page.screenshot(path=str(ARTIFACTS / "workbench-fixed.png"), full_page=True)
    assert_clean(page, "workbench after fixing the first example")
    assert_plain_words(page, "workbench after fixing the first example")
    screenshot(page, "workbench-fixed")
    page.close()


def test_markup_in_prompt_is_shown_as_text(browser, workbench_url):
    page = browser.new_page()
    open_workbench(page, workbench_url)
    evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> Say hi:'
    set_text_area(page, "Prompt template", evil)
    generate(page)
    text = page.get_by_test_id("heatmap-text")
    expect(text).to_contain_text("<img src=x onerror=")
    expect(text).to_contain_text("<script>window.__pwned=2</script>")
    assert page.evaluate("() => window.__pwned") is None
    assert text.locator("img, script").count() == 0
    page.close()


def test_keyboard_selects_a_target(browser, workbench_url):
    page = browser.new_page()
    open_workbench(page, workbench_url)
    generate(page)
    segment = output_segment(page, "Recommendation")
    segment.focus()
    segment.press("Enter")
    expect(status(page)).to_contain_text("Explaining: “", timeout=LONG)
    wait_idle(page)
    # The rerun redraws the output; the keyboard stays on the chosen segment (inside the
    # component's shadow root), so Tab and Enter keep working without a mouse.
    focused = page.evaluate(
        """() => { let a = document.activeElement;
        while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
        return a ? [a.className, a.textContent] : null; }"""
    )
    assert focused and "hm-seg" in focused[0] and "Recommendation" in focused[1], focused
    page.close()


def test_two_sessions_generate_at_once(browser, workbench_url):
    pages = [browser.new_context().new_page() for _ in range(2)]
    for number, page in enumerate(pages):
        open_workbench(page, workbench_url)
        set_text_area(page, "food_likes", f"Cheese number {number}")
    for page in pages:
        expect(page.get_by_role("button", name="Generate")).to_have_count(1, timeout=LONG)
    for page in pages:  # both clicks land before either generation finishes
        page.get_by_role("button", name="Generate").click()
    for number, page in enumerate(pages):  # each session kept its own prompt, and explained it
        expect(status(page)).to_be_visible(timeout=LONG)
        wait_idle(page)
        heatmap_text = page.get_by_test_id("heatmap-text")
        expect(heatmap_text).to_contain_text("Recommendation")
        expect(heatmap_text).to_contain_text(f"Cheese number {number}")
        expect(heatmap_text).not_to_contain_text(f"Cheese number {1 - number}")
        expect(page.get_by_label("food_likes", exact=True)).to_have_value(f"Cheese number {number}")
        # colours arrive computed by salience.report.palette: every prompt segment has an rgb() background
        backgrounds = heatmap_text.locator(".hm-seg:not(.out)").evaluate_all(
            "spans => spans.map(s => s.style.backgroundColor)"
        )
        assert backgrounds and all(b.startswith("rgb(") for b in backgrounds)
        assert len(set(backgrounds)) > 1  # not one flat colour
        heatmap_text.screenshot(path=str(SCREENS / f"two-sessions-{number}-heatmap.png"))
    for page in pages:
        page.context.close()
