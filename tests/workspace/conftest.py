"""Workspace fixtures: each test runs on a SQLite file and on a fresh database of the real
PostgreSQL server that tests/conftest.py starts."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'workspace.sqlite3'}"
    return request.getfixturevalue("postgres_url")
