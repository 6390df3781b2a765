"""Fault helpers for tests: a really read-only folder (even for root) and a PostgreSQL the test owns.

Tests run as root here, where ``chmod`` does not stop writes: a read-only bind mount does (with
``chattr +i`` as the fallback where mounting is not allowed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def create_database(port: int, name: str) -> None:
    """A new empty database ``name`` on the test PostgreSQL server at ``port``."""
    import psycopg

    with psycopg.connect(
        f"host=127.0.0.1 port={port} user=workbench dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def _try(command: list[str]) -> bool:
    return subprocess.run(command, capture_output=True).returncode == 0


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """Make ``folder`` read-only for this process (root included) while the block runs."""
    folder = Path(folder)
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.iterdir()]}
        for path in modes:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield folder
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    if _try(["mount", "--bind", str(folder), str(folder)]):
        if not _try(["mount", "-o", "remount,bind,ro", str(folder)]):
            _try(["umount", str(folder)])
            pytest.skip("cannot remount read-only here")
        try:
            yield folder
        finally:
            if not _try(["umount", str(folder)]):  # still open (a cached engine): detach it lazily
                subprocess.run(["umount", "-l", str(folder)], check=True)
        return
    paths = [folder, *folder.iterdir()]
    if not shutil.which("chattr") or not _try(["chattr", "+i", *map(str, paths)]):
        pytest.skip("neither a read-only bind mount nor chattr +i works here")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


def assert_read_only(folder: Path) -> None:
    with pytest.raises(OSError):
        (Path(folder) / "probe").write_text("x")


class PostgresCluster:
    """A PostgreSQL server the test starts and stops itself (not the session's shared one)."""

    def __init__(self, root: Path, bindir: Path, as_postgres, port: int) -> None:
        self.root, self.bindir, self.as_postgres, self.port = root, bindir, as_postgres, port
        self.data = root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://workbench@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            self.as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data), *args]),
            check=True,
            capture_output=True,
        )

    def init(self) -> None:
        os.chmod(self.root, 0o777)
        subprocess.run(
            self.as_postgres(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "workbench",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-l", str(self.root / "postgres.log"), "-o", options, "-w", "start")
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(f"host=127.0.0.1 port={self.port} user=workbench dbname=postgres").close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        self._ctl("-m", "immediate", "stop")
