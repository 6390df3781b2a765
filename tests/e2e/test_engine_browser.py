"""The app in a browser, pointed at an engine (issue 13): `streamlit run serve.py -- --engine URL`.

A two-replica engine of a tiny model; the sidebar names the engine and its replicas and the page
generates through it. An app whose engine is down says so in one line, and its button moves the
session to the in-process model. Screenshots: artifacts/screens/engine-*.png.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from app_server import ARTIFACTS, ROOT, free_port, stop_app
from engine_server import running_engine
from page_checks import screenshot, settle
from playwright.sync_api import expect
from workbench_page import LONG, generate

pytestmark = pytest.mark.browser


@contextlib.contextmanager
def serving(engine_url: str, env: dict[str, str], timeout: float = 120.0):
    """``streamlit run serve.py -- --engine URL`` (the script's own argument, not the environment)."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    log = open(ARTIFACTS / f"streamlit-engine-{port}.log", "w")  # noqa: SIM115 - closed below
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "serve.py")]
    command += ["--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1"]
    command += ["--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    command += ["--", "--engine", engine_url]
    environment = {k: v for k, v in os.environ.items() if k != "GEMMA_WORKBENCH_ENGINE"}
    process = subprocess.Popen(
        command, cwd=ROOT, env={**environment, **env}, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None and time.monotonic() < deadline, (
                f"streamlit did not start; see {log.name}"
            )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response,
            ):
                if response.status == 200:
                    break
            time.sleep(0.3)
        yield url, process
    finally:
        stop_app(process)
        log.close()


def model_status(url: str) -> dict:
    with urllib.request.urlopen(url + "/model-status", timeout=10) as response:
        return json.loads(response.read())


def test_the_sidebar_names_the_engine_and_the_page_generates_through_it(browser, tiny_model_spec, tmp_path):
    with (
        running_engine(tiny_model_spec, replicas=2) as engine,
        serving(engine.url, {"GEMMA_WORKBENCH_DATA": str(tmp_path / "data")}) as (url, server),
    ):
        deadline = time.monotonic() + 60
        while model_status(url)["phase"] != "ready":  # the server connected at start
            assert time.monotonic() < deadline, model_status(url)
            time.sleep(0.5)
        assert model_status(url)["spec"] == engine.url
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.goto(url)
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_text(f"on the engine at {engine.url} · 2 replicas")).to_be_visible(timeout=LONG)
        generate(page)
        settle(page)
        shots = screenshot(page, "engine-sidebar")
        assert all(path.exists() for path in shots)
        context.close()
        log = (ARTIFACTS / f"streamlit-engine-{url.rsplit(':', 1)[1]}.log").read_text()
        assert "Model calls go to the engine at" in log
        # The server generated and explained, and never loaded TensorFlow's library.
        assert "tensorflow" not in Path(f"/proc/{server.pid}/maps").read_text()


def test_an_engine_that_is_down_falls_back_in_one_click(browser, tiny_model_spec, tmp_path):
    down = f"http://127.0.0.1:{free_port()}"
    env = {"GEMMA_WORKBENCH_DATA": str(tmp_path / "data"), "WORKBENCH_MODEL": tiny_model_spec}
    with serving(down, env) as (url, _):
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.goto(url)
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_text(f"The engine at {down} cannot be reached")).to_be_visible(timeout=LONG)
        settle(page)
        screenshot(page, "engine-down")
        sidebar.get_by_role("button", name="Use the in-process model instead").click()
        expect(sidebar.get_by_text("In use: tiny.gguf")).to_be_visible(timeout=LONG)
        expect(sidebar.get_by_text("cannot be reached")).to_have_count(0)
        generate(page)
        context.close()
