"""Who can reach this server: the listening address and whether sign-in is on, said once in the
log at start-up and in one short sidebar line on every page.

The project's ``.streamlit/config.toml`` binds 127.0.0.1 (personal mode: only this computer);
``scripts/run_app.sh --team`` (or ``--server.address 0.0.0.0``) serves the network (team mode).
Sign-in is on when ``.streamlit/secrets.toml`` has an ``[auth]`` section (see docs/DEPLOY.md).
"""

from __future__ import annotations

import ipaddress
import threading

import streamlit as st

_announced = threading.Event()


def is_loopback(address: str | None) -> bool:
    """True when ``address`` (Streamlit's ``server.address``) accepts this computer only.
    Unset, ``0.0.0.0`` and ``::`` mean every interface."""
    address = (address or "").strip().strip("[]")
    if not address:
        return False
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # a host name: it resolves to some interface other machines can reach
        return False


def reach_line(address: str | None, port: int, sign_in: bool) -> str:
    """The start-up log line, e.g. 'Personal mode: only this computer can open the workbench …'."""
    where = f"{address or '0.0.0.0'}:{port}"
    if is_loopback(address):
        return (
            f"Personal mode: only this computer can open the workbench (listening on {where}); "
            f"sign-in is {'on' if sign_in else 'off'}. Team mode: scripts/run_app.sh --team."
        )
    if sign_in:
        return f"Team mode: other machines can open the workbench (listening on {where}); sign-in is on."
    return (
        f"Team mode: other machines can open the workbench (listening on {where}) and sign-in is OFF: "
        "anyone who reaches this port can read and change the workspace. Configure [auth] (docs/DEPLOY.md)."
    )


def sidebar_line(address: str | None, sign_in: bool) -> str:
    """One short sidebar caption saying who can open this app."""
    if is_loopback(address):
        return f"🔒 Only this computer can open this app · sign-in {'on' if sign_in else 'off'}"
    if sign_in:
        return "🌐 Other machines can open this app · sign-in on"
    return "🌐 Other machines can open this app · **no sign-in**"


def sign_in_configured() -> bool:
    """Whether ``.streamlit/secrets.toml`` configures sign-in (an ``[auth]`` section)."""
    try:
        return bool(st.secrets.load_if_toml_exists()) and "auth" in st.secrets
    except Exception:  # an unreadable secrets file: Streamlit reports it itself; sign-in is not on
        return False


def _address() -> str | None:
    return st.get_option("server.address")


def announce() -> None:
    """Print the reach line once per server process (the first call wins)."""
    if _announced.is_set():
        return
    _announced.set()
    print("  " + reach_line(_address(), int(st.get_option("server.port")), sign_in_configured()), flush=True)


def reach_caption() -> None:
    """The sidebar line (every page)."""
    st.sidebar.caption(sidebar_line(_address(), sign_in_configured()))
