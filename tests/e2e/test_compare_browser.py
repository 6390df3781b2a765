"""The compare page in headless Chromium on the embedded model: the seed's story as one comparison,
shared by link and exported as one HTML file that renders offline."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from playwright.sync_api import expect
from workbench_page import ARTIFACTS, LONG, choose, click, generate, open_workbench, visit, wait_idle


def pin_current(page, count: int) -> None:
    """Pin the workbench's prompt; the page then says how many variants are pinned."""
    click(page, page.get_by_role("button", name="📌 Send to compare"))
    expect(page.get_by_role("link", name=f"({count} of 4 variants pinned)")).to_be_visible(timeout=LONG)


def open_compare(page) -> None:
    click(page, page.get_by_role("link", name="Compare", exact=True).first)
    expect(page.get_by_test_id("shared-legend")).to_be_visible(timeout=LONG)


def pane_texts(page) -> list[str]:
    return page.get_by_test_id("heatmap-text").all_text_contents()


def pin_story(page, url) -> None:
    open_workbench(page, url)
    generate(page)
    pin_current(page, 1)
    for count, sample in enumerate(("fewshot-fixed", "fewshot-constitution"), start=2):
        choose(page, "Sample prompt", sample)
        generate(page)
        pin_current(page, count)
    open_compare(page)


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_compare_share_and_export(browser, workbench_url, tmp_path):
    context = browser.new_context(viewport={"width": 1700, "height": 2400}, accept_downloads=True)
    page = context.new_page()
    pin_story(page, workbench_url)

    expect(page.get_by_test_id("heatmap-text")).to_have_count(3, timeout=LONG)
    expect(page.get_by_test_id("shared-legend")).to_have_count(1)
    expect(page.get_by_test_id("heatmap-legend")).to_have_count(0)  # one legend for all panes
    expect(page.get_by_test_id("shared-legend")).to_contain_text("shared by all panes")
    statuses = page.get_by_test_id("heatmap-status").all_text_contents()
    assert statuses[0].startswith("Explaining “Recommendation:"), statuses
    assert statuses[1] == "Explaining “Recommendation: Avoid.”", statuses
    assert statuses[2].startswith("Explaining “Recommendation:"), statuses  # the constitution's answer
    expect(page.get_by_test_id("output-diff")).to_be_visible()
    texts = pane_texts(page)
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)

    # A link restores the same comparison for someone else (a new browser context = a new person).
    click(page, page.get_by_role("button", name="Create link"))
    link = page.locator("code", has_text="?c=").first.text_content(timeout=LONG).strip()
    assert re.search(r"/compare\?c=[0-9a-f]{12}$", link), link
    other = browser.new_context(viewport={"width": 1600, "height": 1300}).new_page()
    visit(other, link)
    expect(other.get_by_test_id("heatmap-text")).to_have_count(3, timeout=LONG)
    wait_idle(other)
    assert pane_texts(other) == texts
    assert other.get_by_test_id("heatmap-status").all_text_contents() == statuses
    other.context.close()

    # The HTML export is one file that renders with the network off and loads nothing.
    page.get_by_text("Export for slides and reports").click()  # an expander: no rerun
    wait_idle(page)  # a download link from a run still under way may be gone when clicked
    with page.expect_download(timeout=LONG) as download:
        page.get_by_role("button", name="HTML").click(timeout=LONG)
    wait_idle(page)  # the download may rerun the page (or join a rerun already under way)
    path = tmp_path / "comparison.html"
    download.value.save_as(path)
    content = path.read_text()
    parser = _Tags()
    parser.feed(content)
    assert not [tag for tag, _ in parser.tags if tag in ("script", "link", "img", "iframe")]
    assert not [attrs for _, attrs in parser.tags if "src" in attrs or "href" in attrs]
    offline = browser.new_context(offline=True)
    requests = []
    viewer = offline.new_page()
    viewer.on("request", lambda request: requests.append(request.url))
    viewer.goto(path.as_uri())
    coloured = viewer.locator(".text .seg:not(.out)").evaluate_all(
        "els => els.filter(e => getComputedStyle(e).backgroundColor !== 'rgb(255, 255, 255)').length"
    )
    assert coloured > 10
    expect(viewer.locator(".pane")).to_have_count(3)
    expect(viewer.locator(".caption")).to_contain_text("Explaining")
    expect(viewer.locator(".legend")).to_contain_text("shared by all panes")
    assert requests == [path.as_uri()]
    viewer.screenshot(path=str(ARTIFACTS / "compare-export.png"), full_page=True)
    offline.close()

    # Presentation mode: controls hidden, large type, one click per variant.
    click(page, page.get_by_role("button", name="Present ▶"))
    expect(page.get_by_text("1 / 3 · fewshot-mistake")).to_be_visible()
    expect(page.get_by_test_id("stSidebar")).to_be_hidden()
    click(page, page.get_by_role("button", name="Next ▶"))
    expect(page.get_by_text("2 / 3 · fewshot-fixed")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "compare-present.png"))
    click(page, page.get_by_role("button", name="Exit presentation"))
    expect(page.get_by_role("button", name="Create link")).to_be_visible(timeout=LONG)
    context.close()


def test_bad_link_says_so(browser, workbench_url):
    page = browser.new_page()
    page.goto(workbench_url + "/compare?c=doesnotexist")
    expect(page.get_by_text("is not a comparison link id")).to_be_visible(timeout=LONG)
    page.goto(workbench_url + "/compare?c=0123456789ab")
    expect(page.get_by_text("No saved comparison")).to_be_visible(timeout=LONG)
    page.close()
