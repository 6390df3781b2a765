"""Start `streamlit run` on a free port (a helper module with a unique name, so tests can import it)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(
    app: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
    args: tuple[str, ...] = (),
    cwd: Path = ROOT,
):
    """Run ``streamlit run`` headless (with extra Streamlit ``args``, in ``cwd``: the tree whose
    modules it imports); returns (process, base URL) once healthy."""
    port = free_port()
    log = open(ARTIFACTS / f"streamlit-{port}.log", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(app),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
            *args,
        ],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.3)
        if process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"streamlit did not start; see {log.name}")


def wait_for_model(url: str, timeout: float = 300.0, settled: bool = False) -> str:
    """Wait until the server's default model has loaded and warmed up (or failed); its phase.
    ``settled``: until the warm-up's background steps after "ready" are done too."""
    deadline = time.monotonic() + timeout
    phase = "unknown"
    while time.monotonic() < deadline:
        status = {}
        try:
            with urllib.request.urlopen(url + "/model-status", timeout=5) as response:
                status = json.load(response)
                phase = status.get("phase", "unknown")
        except (OSError, ValueError):
            phase = "unreachable"
        if phase in ("ready", "failed", "not started") and (not settled or status.get("settled", True)):
            return phase
        time.sleep(0.5)
    return phase


def stop_app(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
