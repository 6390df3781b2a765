"""The start-up line and the sidebar line that say who can reach the app."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from components.exposure import is_loopback, reach_line, sidebar_line

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.1.1", "localhost", "::1", "[::1]"])
def test_loopback_addresses(address):
    assert is_loopback(address)


@pytest.mark.parametrize("address", [None, "", "0.0.0.0", "::", "10.0.0.5", "workbench.example.org"])
def test_addresses_other_machines_reach(address):
    assert not is_loopback(address)


def test_the_lines_name_the_mode_and_sign_in():
    assert reach_line("127.0.0.1", 8501, False).startswith("Personal mode: only this computer")
    assert "sign-in is OFF" in reach_line(None, 8501, False)
    assert "0.0.0.0:8501" in reach_line(None, 8501, False)
    assert reach_line("0.0.0.0", 8501, True).endswith("sign-in is on.")
    assert sidebar_line("127.0.0.1", False) == "🔒 Only this computer can open this app · sign-in off"
    assert "no sign-in" in sidebar_line("0.0.0.0", False)


def test_the_project_config_binds_loopback_and_caps_uploads():
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert server["address"] == "127.0.0.1"
    assert server["maxUploadSize"] <= 25
