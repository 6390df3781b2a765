"""No work outlives its session: a page that closes mid-Deletion or mid-evaluation stops costing
the server CPU within seconds, measured from the server process's own CPU time (/proc).

Both tests use the shared app server (warm model). Each starts the long work, checks that the
server is busy with it, closes the page and watches the server's CPU time until it stops
growing. The numbers are printed and kept in artifacts/session-work.json.
"""

from __future__ import annotations

import json
import time

from app_runs import rerun_after
from app_server import ARTIFACTS
from playwright.sync_api import expect
from process_load import cpu_seconds, watch_until_idle
from workbench_page import LONG, generate, open_workbench, set_text_area, wait_idle

STOPS_WITHIN = 10.0  # seconds after the page closes
BUSY_SHARE = 0.5  # of one core, while the work runs
BOXES = ("red", "blue", "green", "yellow", "white", "black", "orange", "purple")
FRUITS = ("apples", "pears", "plums", "figs", "dates", "limes", "grapes", "kiwis")


def long_prompt(lines: int = 48) -> str:
    """About 900 tokens of one-sentence facts and a question: Deletion has 48 lines to remove."""
    facts = [
        f"Shelf {n}: the {BOXES[n % 8]} box on this shelf holds {n + 3} {FRUITS[(n * 3) % 8]} and a note."
        for n in range(lines)
    ]
    return "\n".join(facts) + "\nQuestion: how many plums does shelf 2 hold?\nAnswer:"


def busy_share(pid: int, seconds: float = 2.0) -> float:
    """Share of one core the process uses over the next ``seconds``."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


def record(name: str, busy: float, trace) -> None:
    path = ARTIFACTS / "session-work.json"
    found = json.loads(path.read_text()) if path.exists() else {}
    found[name] = {
        "busy_share_before_close": round(busy, 2),
        "stopped_after_seconds": trace.idle_from,
        "cpu_seconds_0_to_10s_after_close": round(trace.used_between(0, 10), 2),
        "cpu_seconds_total_watched": round(trace.samples[-1][1], 2),
        "watched_seconds": round(trace.samples[-1][0], 1),
    }
    path.write_text(json.dumps(found, indent=1))
    print(name, found[name])


def test_closing_the_page_stops_its_deletion(browser, workbench_server):
    process, url = workbench_server
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    open_workbench(page, url)
    set_text_area(page, "Prompt template", long_prompt())
    generate(page)
    rerun_after(page, lambda: page.locator("[data-testid=heatmap-text] .hm-seg.out").first.click(), LONG)
    checking = page.get_by_text("Deletion is checking these colours in the background")
    expect(checking).to_be_visible(timeout=LONG)
    busy = busy_share(process.pid)
    assert busy > BUSY_SHARE, f"the server used {busy:.0%} of a core: Deletion was not running"
    expect(checking).to_be_visible()  # still running when the page closes

    page.context.close()
    trace = watch_until_idle(process.pid, timeout=STOPS_WITHIN + 20)
    record("deletion", busy, trace)
    assert trace.idle_from is not None and trace.idle_from <= STOPS_WITHIN, trace.samples


def test_closing_the_page_stops_its_evaluation(browser, workbench_server):
    process, url = workbench_server
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    open_workbench(page, url)
    page.get_by_role("link", name="Evaluate").first.click()
    run = page.get_by_role("button", name="Run 68 generations")
    expect(run).to_be_enabled(timeout=LONG)
    wait_idle(page)
    run.click()
    expect(page.get_by_text("generations done")).to_be_visible(timeout=LONG)
    busy = busy_share(process.pid)
    assert busy > BUSY_SHARE, f"the server used {busy:.0%} of a core: the evaluation was not running"
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()  # still running

    page.context.close()
    trace = watch_until_idle(process.pid, timeout=STOPS_WITHIN + 20)
    record("evaluation", busy, trace)
    assert trace.idle_from is not None and trace.idle_from <= STOPS_WITHIN, trace.samples
