"""Session-state keys live in components/state.py: no page or component spells one out."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LITERAL_KEY = re.compile(
    r"""session_state\s*(\[\s*[rbf]?["']|\.(get|pop|setdefault|__getitem__|__setitem__)\(\s*[rbf]?["'])"""
)
ATTRIBUTE_KEY = re.compile(
    r"session_state\.(?!get\b|pop\b|setdefault\b|keys\b|items\b|values\b|clear\b)[a-z_]+"
)


def _sources() -> list[Path]:
    files = [ROOT / "app.py", *(ROOT / "app_pages").rglob("*.py"), *(ROOT / "components").rglob("*.py")]
    return [path for path in files if path.name != "state.py" or path.parent.name != "components"]


def _offences(pattern: re.Pattern, text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if pattern.search(line)]


def test_no_literal_session_state_keys_outside_state_py():
    found = {}
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        offences = _offences(LITERAL_KEY, text) + _offences(ATTRIBUTE_KEY, text)
        if offences:
            found[str(path.relative_to(ROOT))] = offences
    assert not found, found


def test_the_check_finds_literal_keys():
    sample = 'st.session_state["draft"] = 1\nx = st.session_state.get("other")\nst.session_state.mine = 2\n'
    assert len(_offences(LITERAL_KEY, sample)) == 2 and len(_offences(ATTRIBUTE_KEY, sample)) == 1
    assert not _offences(LITERAL_KEY, "st.session_state[state.DRAFT] = 1")
