"""Shared fixtures: tiny models for fast tests, the real embedded model for a few, and a
throwaway PostgreSQL server."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import salience  # noqa: E402,F401  (configures the Keras backend first)


@pytest.fixture(scope="session")
def spm_proto() -> bytes:
    from tiny_models import train_sentencepiece

    return train_sentencepiece()


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory, spm_proto) -> Path:
    """A random 2-layer Gemma 3 (seed 11, sliding window 4096) as a GGUF file: the model of the
    tests that run the app, a server or an engine on ``gguf:<path>`` and need a model's plumbing,
    not its words. It loads and answers in seconds."""
    from tiny_models import tiny_gemma3, write_gguf

    path = tmp_path_factory.mktemp("tiny-model") / "tiny.gguf"
    write_gguf(tiny_gemma3(spm_proto, seed=11, window=4096), spm_proto, path)
    return path


@pytest.fixture(scope="session")
def tiny_gemma3_lm(spm_proto):
    """A `LanguageModel` over a random 2-layer Gemma 3 (float32 by default)."""
    from tiny_models import tiny_gemma3

    from salience.model.language_model import LanguageModel

    return LanguageModel(tiny_gemma3(spm_proto), "tiny-gemma3", "test:tiny-gemma3", 256, precision="float32")


@pytest.fixture(scope="session")
def tiny_gemma_lm(spm_proto):
    from tiny_models import tiny_gemma

    from salience.model.language_model import LanguageModel

    return LanguageModel(tiny_gemma(spm_proto), "tiny-gemma", "test:tiny-gemma", 256, precision="float32")


@pytest.fixture(scope="session")
def real_model():
    """The embedded Gemma 3 270M (built into the cache on first use)."""
    from salience.model.loader import load_model

    return load_model("embedded")


def pytest_collection_modifyitems(config, items):
    """Folders mark their tests: tests/real → real_model, tests/e2e → browser; those and
    tests/serve (a Ray Serve engine per module) are slow: the fast loop, ``-m "not slow"``, leaves
    them out with every test marked slow by hand."""
    for item in items:
        if "/real/" in str(item.fspath):
            item.add_marker(pytest.mark.real_model)
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
        slow_folder = "/serve/" in str(item.fspath)  # each module starts a Ray Serve engine
        if slow_folder or item.get_closest_marker("real_model") or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)


os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")


# A real PostgreSQL server from Debian's package, started by the tests themselves (as the
# `postgres` user when they run as root), for the workspace tests on both backends.


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    return (
        [runuser, "-u", "postgres", "--", *command]
        if runuser
        else ["su", "postgres", "-c", " ".join(command)]
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A throwaway PostgreSQL cluster; yields a URL prefix (append a database name)."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.fail("PostgreSQL is not installed: run scripts/setup.sh --dev (installs Debian's postgresql)")
    root = tmp_path_factory.mktemp("postgres")
    data = root / "data"
    os.chmod(root, 0o777)
    for parent in root.parents:  # the postgres user must reach the directory
        if str(parent).startswith(str(Path(tmp_path_factory.getbasetemp()).parent)):
            os.chmod(parent, os.stat(parent).st_mode | 0o711)
    subprocess.run(
        _as_postgres(
            [str(bindir / "initdb"), "-D", str(data), "-U", "workbench", "--auth=trust", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    log = root / "postgres.log"
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off",
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    url = f"postgresql+psycopg://workbench@127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    import psycopg

    while True:
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=workbench dbname=postgres").close()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    yield url, port
    # Immediate: a throwaway cluster needs no clean shutdown, and "fast" waited its full 60 s
    # at the end of the slow pass (connections the app's cached workspaces still held).
    subprocess.run(
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-t", "20", "stop"]),
        capture_output=True,
    )


_counter = iter(range(10_000))


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh database on the session's server."""
    from faults import create_database

    prefix, port = postgres_server
    name = f"ws_{os.getpid()}_{next(_counter)}"
    create_database(port, name)
    return f"{prefix}/{name}"


@pytest.fixture
def own_postgres(tmp_path_factory):
    """A PostgreSQL server of the test's own, which the test may stop and start (fault probes)."""
    from faults import PostgresCluster

    bindir = _pg_bin()
    if bindir is None:
        pytest.fail("PostgreSQL is not installed: run scripts/setup.sh --dev (installs Debian's postgresql)")
    root = tmp_path_factory.mktemp("own-postgres")
    for parent in root.parents:  # the postgres user must reach the directory
        if str(parent).startswith(str(Path(tmp_path_factory.getbasetemp()).parent)):
            os.chmod(parent, os.stat(parent).st_mode | 0o711)
    cluster = PostgresCluster(root, bindir, _as_postgres, _free_port())
    cluster.init()
    cluster.start()
    yield cluster
    with contextlib.suppress(subprocess.CalledProcessError):
        cluster.stop()
