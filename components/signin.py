"""Sign-in with the team's identity provider (Streamlit's `st.login` / `st.user`, OpenID Connect).

Sign-in is on when ``.streamlit/secrets.toml`` has an ``[auth]`` section (docs/DEPLOY.md). Then
a visitor who has not signed in gets only the sign-in page: no workbench, no History, no shared
link's content and no model work, because `require_sign_in` runs before any of them. Who may
enter is the ``[access]`` section's ``allowed`` list (e-mail addresses, or ``@domain`` for a
whole domain); ``admins`` lists the addresses that may delete anyone's records. Without
``[auth]`` the app is in personal mode and this module does nothing.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import streamlit as st

from components import state
from components.exposure import sign_in_configured
from components.widgets import plain_markdown
from workspace.owners import Author, may_change, read_only_reason

SIGN_IN_PROBLEM = "sign_in_problem"
PAGES = Path(__file__).resolve().parent.parent / "app_pages"  # each page's url_path is its file's stem


@dataclass(frozen=True)
class Identity:
    """Who is signed in: the provider's stable user id (``sub``), e-mail and display name."""

    sub: str
    email: str
    name: str
    admin: bool = False


def _addresses(values: object) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, Iterable):
        return ()
    return tuple(str(v).strip().lower() for v in values if str(v).strip())


def is_allowed(email: str, allowed: Iterable[str]) -> bool:
    """Whether ``email`` is on the allow-list: the address itself, or ``@its.domain``.
    An empty allow-list lets every signed-in account in (the provider decides alone)."""
    allowed = _addresses(allowed)
    email = email.strip().lower()
    if not allowed:
        return True
    if "@" not in email:
        return False
    domain = "@" + email.rsplit("@", 1)[1]
    return email in allowed or domain in allowed


def identity_from_claims(claims: Mapping, admins: Iterable[str]) -> Identity:
    """The `Identity` in an ID token's claims (the display name falls back to the e-mail)."""
    email = str(claims.get("email") or "").strip()
    name = " ".join(str(claims.get("name") or claims.get("preferred_username") or email).split())[:200]
    return Identity(str(claims.get("sub") or ""), email, name or email, email.lower() in _addresses(admins))


def _access() -> Mapping:
    try:
        return st.secrets.get("access", {}) or {}
    except Exception:  # no secrets file
        return {}


def current_identity() -> Identity | None:
    """The signed-in person, or None in personal mode (or before sign-in)."""
    if not sign_in_configured() or not st.user.is_logged_in:
        return None
    return identity_from_claims(st.user.to_dict(), _access().get("admins", ()))


def current_author() -> Author | None:
    """Who makes a record now: the signed-in person's name, user id and e-mail; None in personal
    mode (records then keep the typed name only, as before)."""
    identity = current_identity()
    return None if identity is None else Author.of(identity)


def may_delete(author: Author, what: str) -> tuple[bool, str]:
    """Whether the signed-in person may delete a record made by ``author`` (its author and admins
    may; personal mode: anyone), and the plain reason when not."""
    if may_change(current_identity(), author.sub):
        return True, ""
    return False, read_only_reason(what, author.name, author.email)


def _provider_answers() -> bool:
    """Whether the identity provider's metadata answers (a provider that is down would leave the
    visitor on a bare 'Authentication error' page)."""
    try:
        url = str(st.secrets["auth"].get("server_metadata_url") or "")
    except Exception:
        return True
    if not url.startswith(("http://", "https://")):
        return True  # several named providers: Streamlit's own page reports a failure
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - an admin's https URL
            return answer.status == 200
    except (OSError, ValueError):
        return False


def _start_sign_in() -> None:
    if _provider_answers():
        st.session_state.pop(SIGN_IN_PROBLEM, None)
        st.login()
    else:
        st.session_state[SIGN_IN_PROBLEM] = (
            "The sign-in service does not answer just now, so nobody can sign in. Try again in a "
            "minute; if it stays down, tell whoever runs this workbench."
        )


def _sign_in_page() -> None:
    st.title("Gemma prompt workbench")
    st.write("This workbench is shared by a team. Sign in with your team account to open it.")
    problem = st.session_state.get(SIGN_IN_PROBLEM)
    if problem:
        st.error(problem, icon="🔒")
    st.button("Sign in", type="primary", on_click=_start_sign_in, key=state.SIGN_IN)


def _refused_page(email: str) -> None:
    st.title("Gemma prompt workbench")
    st.error(
        f"The account {email or '(no e-mail address)'} is not on this workbench's allow-list. "
        "Ask an admin to add it, or sign in with another account.",
        icon="🔒",
    )
    st.button("Sign out", on_click=st.logout, key=state.SIGN_OUT_REFUSED)


def _only(render: Callable[[], None]) -> NoReturn:
    """Draw ``render`` at every page's address (a shared link shows it, not "page not found"),
    and nothing else: the run stops here."""
    paths = sorted(p.stem for p in PAGES.glob("*.py") if p.stem != "workbench")
    pages = [st.Page(render, title="Sign in", icon="🔒", default=True)]
    pages += [st.Page(render, title="Sign in", icon="🔒", url_path=path) for path in paths]
    st.navigation(pages, position="hidden")
    render()
    st.stop()


def require_sign_in() -> Identity | None:
    """With sign-in configured: the signed-in, allowed person, or the sign-in page and
    `st.stop` (nothing after this call runs). Personal mode: None."""
    if not sign_in_configured():
        return None
    if not st.user.is_logged_in:
        _only(_sign_in_page)
    claims = st.user.to_dict()
    email = str(claims.get("email") or "")
    verified = claims.get("email_verified", True) is not False
    if not (verified and is_allowed(email, _access().get("allowed", ()))):
        _only(lambda: _refused_page(email))
    identity = identity_from_claims(claims, _access().get("admins", ()))
    st.session_state[state.REVIEWER] = identity.name  # shown on notes and ratings; not typed
    return identity


def identity_sidebar(identity: Identity | None) -> None:
    """'Signed in as …' and a sign-out button, at the foot of the sidebar."""
    if identity is None:
        return
    with st.sidebar:
        role = " · admin" if identity.admin else ""
        st.caption(f"Signed in as {plain_markdown(identity.name)} ({plain_markdown(identity.email)}){role}")
        st.button("Sign out", on_click=st.logout, key=state.SIGN_OUT)
