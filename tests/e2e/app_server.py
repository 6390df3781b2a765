"""Start `streamlit run` on a free port (a helper module with a unique name, so tests can import it)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
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


def start_app(app: Path, env: dict[str, str] | None = None, timeout: float = 120.0):
    """Run ``streamlit run`` headless; returns (process, base URL) once healthy."""
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
        ],
        cwd=ROOT,
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


def wait_for_model(url: str, timeout: float = 300.0) -> str:
    """Wait until the server's default model has loaded and warmed up (or failed); its phase."""
    deadline = time.monotonic() + timeout
    phase = "unknown"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/model-status", timeout=5) as response:
                phase = json.load(response).get("phase", "unknown")
        except (OSError, ValueError):
            phase = "unreachable"
        if phase in ("ready", "failed", "not started"):
            return phase
        time.sleep(0.5)
    return phase


def stop_app(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) the process has used so far, from /proc."""
    after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(after_name[11]), int(after_name[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuTrace:
    """How a process's CPU time grew after a moment: (seconds since then, CPU seconds used since then)."""

    samples: list[tuple[float, float]]
    idle_from: float | None  # start of the first window in which it stayed idle; None: never idle

    def used_between(self, start: float, end: float) -> float:
        """CPU seconds used between two moments (seconds since the start of the trace)."""

        def at(moment: float) -> float:
            earlier = [cpu for t, cpu in self.samples if t <= moment]
            return earlier[-1] if earlier else 0.0

        return at(end) - at(start)


def watch_until_idle(
    pid: int, timeout: float = 30.0, window: float = 1.0, idle_share: float = 0.1, confirm: int = 2
) -> CpuTrace:
    """Sample the process's CPU time every ``window`` seconds until it has used less than
    ``idle_share`` of one core in ``confirm`` windows in a row (or ``timeout`` has passed)."""
    began, first = time.monotonic(), cpu_seconds(pid)
    samples = [(0.0, 0.0)]
    quiet = 0
    while time.monotonic() - began < timeout:
        time.sleep(window)
        now, used = time.monotonic() - began, cpu_seconds(pid) - first
        last_t, last_used = samples[-1]
        samples.append((now, used))
        quiet = quiet + 1 if used - last_used < idle_share * (now - last_t) else 0
        if quiet >= confirm:
            return CpuTrace(samples, samples[-1 - confirm][0])
    return CpuTrace(samples, None)
