"""Workbench page benchmark in a real headless Chromium, on the embedded model.

    .venv/bin/python bench/bench_ui.py [--clicks 4]

Measures (with the model cache already built):
- start-up: seconds from `streamlit run` until the page is interactive (Generate enabled);
- click-to-colours: seconds from clicking a new output segment (~250-token prompt+output)
  until the heatmap shows it as the explained target, against the same click on a
  target already computed (the page's own round trip, measured in the same run).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from app_server import CHROMIUM, CHROMIUM_ARGS, start_app, stop_app  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402
from workbench_page import ARTIFACTS, LONG, choose, choose_granularity, generate, status, wait_idle  # noqa: E402


def click_and_wait(page, segment) -> float:
    text = segment.inner_text().strip()
    started = time.perf_counter()
    segment.click()
    expect(status(page)).to_contain_text(f"Explaining: “{text}", timeout=LONG)
    wait_idle(page)
    return time.perf_counter() - started


def measure_compare(page) -> tuple[float, float]:
    """Pin the codelab's three prompts, open Compare; time the panes, then a linked control."""
    for sample in ("fewshot-mistake", "fewshot-fixed", "fewshot-constitution"):
        choose(page, "Sample prompt", sample)
        generate(page)
        page.get_by_role("button", name="📌 Send to compare").click()
        wait_idle(page)
    started = time.perf_counter()
    page.get_by_role("link", name="Compare").first.click()
    expect(page.get_by_test_id("heatmap-text")).to_have_count(3, timeout=LONG)
    wait_idle(page)
    opened = time.perf_counter() - started
    started = time.perf_counter()
    choose(page, "Granularity", "words")
    expect(page.get_by_test_id("heatmap-text")).to_have_count(3, timeout=LONG)
    wait_idle(page)
    return opened, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=4)
    args = parser.parse_args()
    ARTIFACTS.mkdir(exist_ok=True)
    started = time.perf_counter()
    data = tempfile.mkdtemp(prefix="bench-ui-")  # autosave goes to a throwaway workspace
    process, url = start_app(ROOT / "app.py", env={"GEMMA_WORKBENCH_DATA": data})
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1200})
            page.goto(url)
            expect(page.get_by_role("button", name="Generate")).to_be_enabled(timeout=LONG)
            wait_idle(page)
            interactive = time.perf_counter() - started
            print(f"start-up: page interactive {interactive:.1f}s after `streamlit run` (target <= 30s)")
            generate(page)
            choose_granularity(page, "words")
            words = page.locator("[data-testid=heatmap-text] .hm-seg.out")
            count = words.count()
            picks = [words.nth(i) for i in range(count - 1, max(count - 1 - args.clicks, -1), -1)]
            fresh = [click_and_wait(page, segment) for segment in picks]
            cached = [click_and_wait(page, segment) for segment in picks]
            tokens = len(page.locator("[data-testid=heatmap-text]").inner_text()) // 4
            new, old = statistics.median(fresh), statistics.median(cached)
            print(
                f"click-to-colours (~{tokens} tokens of text): new target median {new:.2f}s "
                f"(max {max(fresh):.2f}s, target <= 2s) | already computed {old:.2f}s | "
                f"ratio {new / old:.2f}x"
            )
            compare_seconds = measure_compare(page)
            print(
                f"compare: three pinned variants (outputs carried over) -> panes on one scale in "
                f"{compare_seconds[0]:.2f}s; a linked granularity change -> all panes in {compare_seconds[1]:.2f}s"
            )
            browser.close()
    finally:
        stop_app(process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
