"""Workbench page benchmark in a real headless Chromium, on the embedded model.

    .venv/bin/python bench/bench_ui.py [--clicks 4] [--compare]

One fresh `streamlit run` (model cache already built), then, in one browser:
- content: seconds from `streamlit run` until the main area shows the page;
- ready: seconds until the model has loaded and warmed up (Generate works at warm speed);
- first Generate of `fewshot-mistake` (click → output and colours) against the same
  Generate once warm;
- first click on an output word → colours, against later clicks on other words;
- first Integrated Gradients against the same request once warm.
Each action is timed on a settled page (the Deletion run that the previous explanation
started in the background has finished), from the click until Streamlit's script run ends.
The server runs with the result cache off (``WORKBENCH_RESULT_CACHE=off``) so the warm
repeats do the same work as the first ones instead of answering from the cache.
``--compare`` also times the compare page (three pinned variants).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from app_server import CHROMIUM, CHROMIUM_ARGS, start_app, stop_app  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402
from workbench_page import ARTIFACTS, LONG, choose, generate, status, wait_idle  # noqa: E402

LOADING_TEXT = re.compile(r"Loading the model|Warming up|Generate runs as soon")


# Streamlit marks the app element with its script state. The observer notes the first
# time the state goes from "running" back to "notRunning" after the action: the end of the
# action's run, even when background fragments (Deletion's progress) start right after it.
# (The status widget appears too late to tell a short run from none.)
WATCH_RUNS = """() => {
  const app = document.querySelector('[data-testid=stApp]');
  window.benchSeenRun = false;
  window.benchRunDone = false;
  if (window.benchObserver) window.benchObserver.disconnect();
  window.benchObserver = new MutationObserver(() => {
    const state = app.getAttribute('data-test-script-state');
    if (state === 'running') window.benchSeenRun = true;
    else if (state === 'notRunning' && window.benchSeenRun) window.benchRunDone = true;
  });
  window.benchObserver.observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
RUN_DONE = "() => window.benchRunDone"


DELETION_RUNNING = re.compile(r"Deletion is checking|Computing the Deletion")


def settle(page) -> None:
    """Wait until background work started by the last action (a Deletion run) has finished."""
    expect(page.get_by_text(DELETION_RUNNING)).to_have_count(0, timeout=LONG)
    wait_idle(page)


def timed(page, action, finished) -> float:
    """Seconds from ``action`` until ``finished`` holds and the page's script run has ended
    (measured on a settled page: background Deletion from the previous action is done)."""
    settle(page)
    page.evaluate(WATCH_RUNS)
    started = time.perf_counter()
    action()
    finished()
    page.wait_for_function(RUN_DONE, timeout=LONG)
    return time.perf_counter() - started


def generate_timed(page) -> float:
    """Click Generate; wait for the streamed output (its spinner) and then the colours."""
    button = page.get_by_role("button", name="Generate")
    expect(button).to_have_count(1, timeout=LONG)
    wait_idle(page)

    def finished() -> None:
        spinner = page.get_by_text("Generating…")
        with contextlib.suppress(AssertionError):  # a run shorter than the spinner's 0.5 s delay
            expect(spinner).to_be_visible(timeout=10_000)
        expect(spinner).to_have_count(0, timeout=LONG)
        expect(status(page)).to_be_visible(timeout=LONG)

    return timed(page, button.click, finished)


def click_and_wait(page, segment) -> float:
    text = segment.inner_text().strip()
    wait_idle(page)
    return timed(page, segment.click, lambda: expect(status(page)).to_contain_text(f"“{text}", timeout=LONG))


def choose_method(page, pattern: str) -> None:
    """Pick the salience method whose name matches ``pattern`` (radio buttons or a select box)."""
    radio = page.get_by_test_id("stRadio").locator("label").filter(has_text=re.compile(pattern))
    if radio.count():
        radio.first.click()
    else:
        page.get_by_role("combobox", name="Method").click()
        page.get_by_role("option", name=re.compile(pattern)).first.click()


def method_run(page, pattern: str, status_pattern: str) -> float:
    wait_idle(page)
    return timed(
        page,
        lambda: choose_method(page, pattern),
        lambda: expect(status(page)).to_contain_text(re.compile(status_pattern), timeout=LONG),
    )


def measure_compare(page) -> tuple[float, float]:
    """Pin the codelab's three prompts, open Compare; time the panes, then a linked control."""
    for sample in ("fewshot-mistake", "fewshot-fixed", "fewshot-constitution"):
        choose(page, "Sample prompt", sample)
        generate(page)
        page.get_by_role("button", name=re.compile("Send to compare")).click()
        wait_idle(page)
    started = time.perf_counter()
    page.get_by_role("link", name="Compare", exact=True).first.click()
    expect(page.get_by_test_id("heatmap-text")).to_have_count(3, timeout=LONG)
    wait_idle(page)
    opened = time.perf_counter() - started
    started = time.perf_counter()
    choose(page, "Granularity", "words")
    expect(page.get_by_test_id("heatmap-text")).to_have_count(3, timeout=LONG)
    wait_idle(page)
    return opened, time.perf_counter() - started


def table(rows: list[tuple[str, float, float | None, str]]) -> str:
    lines = ["| measure | first | warm | first / warm | target |", "|---|---|---|---|---|"]
    for name, first, warm, target in rows:
        ratio = f"{first / warm:.2f}×" if warm else "—"
        lines.append(f"| {name} | {first:.1f} s | {f'{warm:.1f} s' if warm else '—'} | {ratio} | {target} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=4)
    parser.add_argument("--compare", action="store_true", help="also time the compare page")
    args = parser.parse_args()
    ARTIFACTS.mkdir(exist_ok=True)
    data = tempfile.mkdtemp(prefix="bench-ui-")  # autosave goes to a throwaway workspace
    started = time.perf_counter()
    process, url = start_app(
        ROOT / "serve.py", env={"GEMMA_WORKBENCH_DATA": data, "WORKBENCH_RESULT_CACHE": "off"}
    )
    rows: list[tuple[str, float, float | None, str]] = []

    def report(*row) -> None:
        rows.append(row)
        print(table(rows[-1:]).splitlines()[-1], flush=True)

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url)
            expect(page.get_by_role("heading", name="Prompt workbench")).to_be_visible(timeout=LONG)
            content = time.perf_counter() - started
            report("`streamlit run` → main area shows the page", content, None, "≤ 5 s")
            expect(page.get_by_role("button", name="Generate")).to_be_enabled(timeout=LONG)
            expect(page.get_by_text(LOADING_TEXT)).to_have_count(0, timeout=LONG)
            wait_idle(page)
            ready = time.perf_counter() - started
            report("`streamlit run` → model loaded and warm", ready, None, "—")
            first_generate = generate_timed(page)
            warm_generate = generate_timed(page)
            report("Generate `fewshot-mistake` (output + colours)", first_generate, warm_generate, "≤ 2×")
            words = page.locator("[data-testid=heatmap-text] .hm-seg.out")
            count = words.count()
            picks = [words.nth(i) for i in range(count - 1, max(count - 2 - args.clicks, -1), -1)]
            clicks = [click_and_wait(page, segment) for segment in picks]
            report("click an output part → colours", clicks[0], statistics.median(clicks[1:]), "≤ 2×")
            first_ig = method_run(page, "Integrated", "Integrated")
            method_run(page, "Grad L2", "Grad L2")
            warm_ig = method_run(page, "Integrated", "Integrated")
            report("switch to Integrated Gradients → colours", first_ig, warm_ig, "≤ 2×")
            page.screenshot(path=str(ARTIFACTS / "bench-ui-workbench.png"), full_page=True)
            print("\n" + table(rows), flush=True)
            if args.compare:
                opened, linked = measure_compare(page)
                print(
                    f"compare: three pinned variants -> panes on one scale in {opened:.2f}s; "
                    f"a linked granularity change -> all panes in {linked:.2f}s"
                )
            browser.close()
    finally:
        stop_app(process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
