"""Start `streamlit run` on a free port and drive it with Debian's headless Chromium."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from app_runs import track_new_pages
from app_server import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, start_app, stop_app


@pytest.fixture(scope="session")
def browser():
    ARTIFACTS.mkdir(exist_ok=True)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh --dev (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        track_new_pages(instance)  # helpers wait for Streamlit's runs by reading each page's messages
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def workbench_url(tmp_path_factory):
    """The real app on the embedded model (the model cache is built by setup); user data in a temp dir."""
    ARTIFACTS.mkdir(exist_ok=True)
    data = tmp_path_factory.mktemp("workbench-data")
    process, url = start_app(ROOT / "serve.py", env={"GEMMA_WORKBENCH_DATA": str(data)})
    yield url
    stop_app(process)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failing browser test, save a screenshot of every open page (artifacts/failed-*.png)."""
    report = yield
    if report.when == "call" and report.failed and "browser" in item.funcargs:
        instance = item.funcargs["browser"]
        for c, context in enumerate(instance.contexts):
            for p, page in enumerate(context.pages):
                with contextlib.suppress(Exception):  # a closed page has no screenshot; keep the report
                    page.screenshot(path=str(ARTIFACTS / f"failed-{item.name}-{c}-{p}.png"), full_page=True)
    return report
