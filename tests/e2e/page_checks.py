"""What a reviewer must never see on a page, and screenshots of every state a browser test reaches.

``assert_clean`` fails on text only a developer should see (Streamlit internals printed by
"magic", tracebacks, exception names, object reprs, a bare ``None``), on an exception box and on
a page far taller than its content needs. ``screenshot`` saves the page at 1440×900 and 1024×768
under ``artifacts/screens/`` (``scripts/update_screenshots.sh`` copies them into docs/ for the
README).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from app_runs import wait_quiet
from playwright.sync_api import Locator, Page, expect

SCREENS = Path(__file__).resolve().parents[2] / "artifacts" / "screens"
SIZES = ((1440, 900), (1024, 768))
MAX_PAGE_HEIGHT = 6000  # px; the tallest page (compare, three panes and their differences) is ~3500
NAVIGATION = ["Workbench", "Compare", "Evaluate", "History"]

DEVELOPER_TEXT = [
    ("Streamlit internals", re.compile(r"DeltaGenerator|\b(?:add_rows|altair_chart|bokeh_chart)\b")),
    ("a traceback", re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")),
    ("an exception name", re.compile(r"\b[A-Z]\w*(?:Error|Exception): ")),
    ("an object repr", re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")),
    ("a bare None", re.compile(r"(?m)^\s*None\s*$|[:=(“\"']\s*None\b|\bNone\s*[·,)”\"']")),
    ("a JavaScript undefined/NaN", re.compile(r"\bundefined\b|\bNaN\b")),
]

# Words only an engineer reads. A reviewer page may show them only inside an expander (or a
# <details>) labelled "Details for engineers" (components.widgets.ENGINEER_DETAILS).
ENGINEER_DETAILS = "Details for engineers"
ENGINEER_TERMS = [
    ("a compute precision", re.compile(r"\b(?:b?float ?(?:16|32)|bf16|fp32)\b", re.IGNORECASE)),
    ("a correlation", re.compile(r"\bcorrelation\b|\bSpearman\b|\bPearson\b", re.IGNORECASE)),
    ("an interval method", re.compile(r"\bWilson\b|\b\d+% (?:CI|interval)\b|\bconfidence interval\b")),
    ("a raw stop reason", re.compile(r"\b(?:stop_sequence|end_of_text|max_new_tokens)\b|\bstop: ")),
    ("a raw colour scale", re.compile(r"Strongest colour\s*=|\bscale\s*=\s*[\d.]")),
    ("log-probability units", re.compile(r"\bnats?\b|\blog[- ]?prob", re.IGNORECASE)),
    ("a per-token share", re.compile(r"\bper token\b|\bsign ignored\b", re.IGNORECASE)),
    ("a decoding speed", re.compile(r"tokens?/s\b")),
    ("seconds past a minute", re.compile(r"(?<![\d.])(?:[6-9]\d|\d{3,})(?:\.\d+)? ?s\b")),
    ("a count of nothing", re.compile(r"(?<![\d.])0 / 0(?![\d])")),
    ("a template placeholder as a label", re.compile(r"(?<!\{)\{[A-Za-z_]\w*\}(?!\})")),
    ("a bare signed score", re.compile(r"(?<![\w.])[+−-]\d+\.\d{2,}\b")),
]

# Visible text of the page, shadow roots included (the heatmap draws in one), leaving out form
# fields (a template is the user's own text), closed <details> and anything under a <details>
# whose summary is the engineers' label (Streamlit's st.expander is a <details> too).
_VISIBLE_TEXT_JS = """(label) => {
  const out = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) {
      const parent = node.parentElement;
      if (node.textContent.trim() && parent && parent.checkVisibility({visibilityProperty: true}))
        out.push(node.textContent);
      return;
    }
    if (node.nodeType !== Node.ELEMENT_NODE && node.nodeType !== Node.DOCUMENT_FRAGMENT_NODE) return;
    if (node.nodeType === Node.ELEMENT_NODE) {
      const tag = node.tagName;
      if (["SCRIPT", "STYLE", "NOSCRIPT", "TEXTAREA", "INPUT", "TEMPLATE"].includes(tag)) return;
      if (tag === "DETAILS") {
        const summary = [...node.children].find((c) => c.tagName === "SUMMARY");
        if (summary && summary.textContent.includes(label)) return;
      }
      if (node.shadowRoot) walk(node.shadowRoot);
    }
    for (const child of node.childNodes) walk(child);
  };
  walk(document.body);
  return out.join("\\n");
}"""

# The page's height wherever Streamlit scrolls: the document or its main scroll container.
_HEIGHT_JS = """() => Math.max(
    document.documentElement.scrollHeight,
    document.body.scrollHeight,
    ...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stAppViewContainer], section.main')]
        .map(e => e.scrollHeight))"""


def settle(page: Page, timeout: float = 180.0) -> None:
    """Wait until Streamlit is idle and the page's text has stopped changing (background work such
    as a fragment that polls for results may rerun parts of the page for a while)."""
    deadline = time.monotonic() + timeout
    before = None
    while time.monotonic() < deadline:
        wait_quiet(page, max(1000, int((deadline - time.monotonic()) * 1000)))
        text = page.locator("body").inner_text()
        if text == before:
            return
        before = text
        page.wait_for_timeout(1500)
    raise AssertionError(f"the page kept changing for {timeout:.0f}s")


def next_frame(page: Page) -> None:
    """Until the browser has laid out and painted the page twice more (after a resize or scroll)."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r())))")


def page_height(page: Page) -> int:
    return int(page.evaluate(_HEIGHT_JS))


def developer_text(text: str) -> list[str]:
    """The developer-only things found in a page's visible text, with the line they are on."""
    found = []
    for what, pattern in DEVELOPER_TEXT:
        for match in pattern.finditer(text):
            start = text.rfind("\n", 0, match.start()) + 1
            end = text.find("\n", match.end())
            found.append(f"{what}: {text[start : end if end >= 0 else None][:160]!r}")
    return found


def assert_clean(page: Page, where: str, max_height: int = MAX_PAGE_HEIGHT) -> None:
    """No developer-only text, no exception box and a sane height on the page once it is settled."""
    settle(page)
    text = page.locator("body").inner_text()
    found = developer_text(text)
    assert not found, f"{where}: the page shows what only a developer should see:\n" + "\n".join(found)
    expect(page.get_by_test_id("stException"), f"{where}: an exception box").to_have_count(0)
    height = page_height(page)
    assert height <= max_height, f"{where}: the page is {height}px tall (more than {max_height}px)"


def visible_text(page: Page) -> str:
    """What a reviewer can read on the page now, outside the engineers' details."""
    return page.evaluate(_VISIBLE_TEXT_JS, ENGINEER_DETAILS)


def engineer_text(text: str) -> list[str]:
    """The engineer terms found in a page's visible text, with the line each is on."""
    found = []
    for what, pattern in ENGINEER_TERMS:
        for match in pattern.finditer(text):
            start = text.rfind("\n", 0, match.start()) + 1
            end = text.find("\n", match.end())
            found.append(f"{what}: {text[start : end if end >= 0 else None][:160]!r}")
    return found


def assert_plain_words(page: Page, where: str) -> str:
    """No engineer term anywhere a reviewer reads without opening "Details for engineers";
    returns the visible text (for assertions on the words a reviewer reads)."""
    settle(page)
    text = visible_text(page)
    found = engineer_text(text)
    assert not found, f"{where}: engineer terms outside “{ENGINEER_DETAILS}”:\n" + "\n".join(found)
    return text


def assert_navigation(page: Page, where: str) -> None:
    """The app's own navigation (not Streamlit's file list) and the wide layout."""
    links = page.get_by_test_id("stSidebarNavLink")
    expect(links, f"{where}: the sidebar's page links").to_have_count(len(NAVIGATION), timeout=60_000)
    names = [re.sub(r"[^A-Za-z ]", "", t).strip() for t in links.all_inner_texts()]
    assert names == NAVIGATION, f"{where}: the sidebar lists {names}, not {NAVIGATION}"
    width = page.get_by_test_id("stMainBlockContainer").bounding_box()["width"]
    viewport = page.viewport_size["width"]
    assert width > 0.6 * (viewport - 400), f"{where}: the main area is {width}px wide (narrow layout)"


def screenshot(page: Page, name: str, focus: Locator | None = None) -> list[Path]:
    """Save ``NAME-WxH.png`` (what the screen shows, scrolled so that ``focus`` is at the top) and
    ``NAME-WxH-full.png`` (the whole page, same width) for each size; leaves the page at its first
    size. Returns the paths."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    saved = []
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        next_frame(page)  # columns and the heatmap lay out again
        settle(page)
        if focus is not None:
            focus.evaluate("e => e.scrollIntoView({block: 'start'})")
            next_frame(page)
        path = SCREENS / f"{name}-{width}x{height}.png"
        page.screenshot(path=str(path))
        full = min(max(page_height(page), height), MAX_PAGE_HEIGHT)
        page.set_viewport_size({"width": width, "height": full})
        next_frame(page)
        settle(page)
        page.screenshot(path=str(SCREENS / f"{name}-{width}x{height}-full.png"))
        saved += [path, SCREENS / f"{name}-{width}x{height}-full.png"]
    page.set_viewport_size(original or {"width": SIZES[0][0], "height": SIZES[0][1]})
    next_frame(page)
    return saved
