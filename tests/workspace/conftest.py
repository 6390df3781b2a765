"""Workspace fixtures: a SQLite file per test, and a real PostgreSQL server started from
Debian's package for the session (as the `postgres` user when the tests run as root)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


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
    subprocess.run(
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]), capture_output=True
    )


_counter = iter(range(10_000))


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh database on the session's server."""
    import psycopg

    prefix, port = postgres_server
    name = f"ws_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(
        f"host=127.0.0.1 port={port} user=workbench dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{prefix}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'workspace.sqlite3'}"
    return request.getfixturevalue("postgres_url")
