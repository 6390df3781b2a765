"""Start `streamlit run` on a free port and drive it with Debian's headless Chromium."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from app_runs import track_new_pages
from app_server import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    start_app,
    stop_app,
    wait_for_model,
)
from process_load import watch_until_idle

IDLE_WITHIN = 10.0  # seconds after a test closes its pages


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
def workbench_server(tmp_path_factory):
    """The real app on the embedded model (the model cache is built by setup), shared by the
    browser tests that ask for it; user data in a temp dir. Yields (process, URL)."""
    ARTIFACTS.mkdir(exist_ok=True)
    data = tmp_path_factory.mktemp("workbench-data")
    process, url = start_app(ROOT / "serve.py", env={"GEMMA_WORKBENCH_DATA": str(data)})
    yield process, url
    stop_app(process)


@pytest.fixture(scope="session")
def tiny_model_spec(tiny_gguf) -> str:
    """The tiny model (`tiny_gguf`) as a ``WORKBENCH_MODEL`` for a server: for browser tests of the
    page's plumbing (saving, restarts, engines, reviews) that need a model but not its words. It
    loads and answers in seconds, where the embedded model takes half a minute."""
    return f"gguf:{tiny_gguf}"


@pytest.fixture(scope="session")
def workbench_url(workbench_server):
    return workbench_server[1]


@pytest.fixture(autouse=True)
def leaves_shared_server_idle(request):
    """After each browser test: close every page it opened; a test of the shared server must
    leave it idle (no work of closed pages still running) within `IDLE_WITHIN` seconds."""
    yield
    if "browser" in request.fixturenames:
        for context in list(request.getfixturevalue("browser").contexts):
            with contextlib.suppress(Exception):
                context.close()
    if not {"workbench_url", "workbench_server"} & set(request.fixturenames):
        return
    process, url = request.getfixturevalue("workbench_server")
    wait_for_model(url, settled=True)  # the start-up's warm-up is shared work: not the test's to stop
    trace = watch_until_idle(process.pid, timeout=IDLE_WITHIN + 5)
    if trace.idle_from is None or trace.idle_from > IDLE_WITHIN:
        pytest.fail(
            f"The shared app server was still busy {IDLE_WITHIN} s after {request.node.name} closed its "
            f"pages (CPU seconds used since: {trace.samples[-1][1]:.1f}): work outlived its session."
        )


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
