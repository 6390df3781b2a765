"""Who can reach a started server: the quick start (`scripts/run_app.sh`, the project's
`.streamlit/config.toml`) listens on 127.0.0.1 only; `run_app.sh --team` on every interface.
Each server's log says which, and whether sign-in is on.

The servers run with an engine address that answers nothing, so no model loads here.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from app_server import ROOT, free_port

LISTEN = "0A"  # TCP state of a listening socket in /proc/net/tcp


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found: set[str] = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        if not Path(table).exists():
            continue
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            local, state = fields[1], fields[3]
            address, port_hex = local.split(":")
            if state != LISTEN or int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(address)
            # the kernel prints each 32-bit word in host (little-endian) order
            packed = b"".join(raw[i : i + 4][::-1] for i in range(0, width, 4))
            found.add(str(ipaddress.ip_address(packed)))
    return found


def outward_address() -> str | None:
    """This machine's address on its network (not loopback), or None when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks a route
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if ipaddress.ip_address(address).is_loopback else address


def start_quick_start(tmp_path: Path, *options: str) -> tuple[subprocess.Popen, int, Path]:
    """`bash scripts/run_app.sh OPTIONS --server.port P` (setup skipped: it ran already)."""
    port = free_port()
    log = tmp_path / f"run_app-{port}.log"
    env = {
        **os.environ,
        "GEMMA_WORKBENCH_SKIP_SETUP": "1",
        "GEMMA_WORKBENCH_ENGINE": "http://127.0.0.1:9",  # nothing answers: no model work here
        "GEMMA_WORKBENCH_DATA": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
    }
    with open(log, "w") as out:
        process = subprocess.Popen(
            ["bash", "scripts/run_app.sh", *options, "--server.port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"run_app.sh exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                if answer.status == 200 and "mode:" in log.read_text():
                    return process, port, log
        except OSError:
            pass
        time.sleep(0.3)
    process.kill()
    pytest.fail(f"run_app.sh did not start:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def test_the_quick_start_listens_on_loopback_only(tmp_path):
    process, port, log = start_quick_start(tmp_path)
    try:
        assert listening_addresses(port) == {"127.0.0.1"}
        other = outward_address()
        if other is not None:  # from this machine's network address: nothing answers
            with pytest.raises(OSError), socket.create_connection((other, port), timeout=3):
                pass
        text = log.read_text()
        assert "Personal mode: only this computer can open the workbench" in text
        assert f"listening on 127.0.0.1:{port}" in text and "sign-in is off" in text
    finally:
        stop(process)


def test_team_mode_listens_on_every_interface_and_says_sign_in_is_off(tmp_path):
    process, port, log = start_quick_start(tmp_path, "--team")
    try:
        assert listening_addresses(port) & {"0.0.0.0", "::"}
        other = outward_address()
        if other is not None:
            socket.create_connection((other, port), timeout=3).close()
        text = log.read_text()
        assert "Team mode: other machines can open the workbench" in text
        assert "sign-in is OFF" in text
    finally:
        stop(process)
