"""Start ``python -m salience serve`` in a subprocess for a test (local Ray on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
READY = "Engine ready at "


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class EngineProcess:
    """A running engine: its URL, process and the lines it printed."""

    url: str
    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)

    def replica_pids(self, want: int, timeout: float = 60.0) -> set[int]:
        """The worker processes of ``want`` distinct replicas (asked until each has answered)."""
        pids: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(pids) < want and time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                pids.add(int(requests.get(self.url + "/info", timeout=10).json()["pid"]))
        return pids


def _pump(process: subprocess.Popen, lines: list[str]) -> None:
    for line in process.stdout:
        lines.append(line.rstrip("\n"))


@contextlib.contextmanager
def running_engine(
    spec: str,
    *,
    replicas: int = 2,
    precision: str = "float32",
    num_cpus: float = 0.25,
    timeout: float = 300.0,
    env: dict | None = None,
    args: tuple[str, ...] = (),
    sigint_ignored: bool = False,
) -> Iterator[EngineProcess]:
    """``python -m salience serve`` for ``spec`` until the block ends (then Ctrl+C, as a user would);
    ``sigint_ignored`` starts it as a script's background job starts: with SIGINT ignored."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "salience",
        "serve",
        "--model",
        spec,
        "--replicas",
        str(replicas),
        "--num-cpus",
        str(num_cpus),
        "--precision",
        precision,
        "--port",
        str(port),
        *args,
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1", "RAY_USAGE_STATS_ENABLED": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None,
    )
    engine = EngineProcess(f"http://127.0.0.1:{port}", process)
    threading.Thread(target=_pump, args=(process, engine.lines), daemon=True).start()
    try:
        deadline = time.monotonic() + timeout
        while not any(line.startswith(READY) for line in engine.lines):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the engine did not start:\n" + "\n".join(engine.lines[-40:]))
            time.sleep(0.2)
        yield engine
    finally:
        stop(engine)


def stop(engine: EngineProcess, timeout: float = 30.0) -> int | None:
    """Ctrl+C, then wait for a clean exit (kill the group if it hangs); the exit status. The
    engine bounds its own stop (`STOP_WAIT_S` for Serve, then Ray's shutdown): 30 s is ample."""
    process = engine.process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _keep_hung_stop(engine, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    return process.returncode


def _keep_hung_stop(engine: EngineProcess, waited: float) -> None:
    """An engine that did not exit after Ctrl+C: keep its last lines (artifacts/) to see where."""
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    path = artifacts / f"engine-stop-hung-{engine.process.pid}.log"
    stacks = ""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if Path(spy).exists():  # where each of its threads is stuck
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(
                [spy, "dump", "--pid", str(engine.process.pid)], capture_output=True, text=True, timeout=30
            )
            stacks = f"\n\npy-spy dump:\n{done.stdout}{done.stderr}"
    path.write_text(
        f"no exit {waited:.0f} s after Ctrl+C; last lines:\n" + "\n".join(engine.lines[-60:]) + stacks
    )
