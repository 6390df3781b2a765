"""Session-state keys live in components/state.py: no page or component spells one out, and a
page's state that is not a widget's value lives in its dataclass (``state.workbench()`` …)."""

from __future__ import annotations

import re
from pathlib import Path

from components import state

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


# A widget key written out: key="x" or key=f"x-{y}" (container keys are CSS hooks, not state).
LITERAL_WIDGET_KEY = re.compile(r"""\bkey=f?["'](?!\{state\.)""")


def test_no_literal_widget_keys_outside_state_py():
    found = {}
    for path in _sources():
        lines = path.read_text(encoding="utf-8").splitlines()
        offences = [
            line.strip() for line in lines if LITERAL_WIDGET_KEY.search(line) and "container(" not in line
        ]
        if offences:
            found[str(path.relative_to(ROOT))] = offences
    assert not found, found


def test_the_check_finds_literal_widget_keys():
    found = [
        line
        for line in ('st.button("Go", key="go")', 'st.button("Go", key=f"go-{n}")')
        if LITERAL_WIDGET_KEY.search(line)
    ]
    assert len(found) == 2
    assert not LITERAL_WIDGET_KEY.search('st.feedback("thumbs", key=f"{state.NOTE_RATING}_{subject}")')


def _key_constants() -> dict[str, str]:
    return {name: value for name, value in vars(state).items() if name.isupper() and isinstance(value, str)}


def _widget_uses(name: str, text: str) -> bool:
    """``state.NAME`` used as a widget's key: after ``key=``/``key: str =``, inside edit_key/child_key,
    or as a prefix (``state.NAME + …``)."""
    pattern = rf"(\bkey\b[^\n]{{0,40}}|(edit|child)_key\([^\n]{{0,40}})state\.{name}\b|state\.{name}\s*\+"
    return re.search(pattern, text) is not None


def _not_widget_keys(text: str) -> list[str]:
    """Key names that are neither a page's dataclass, session-wide, nor any widget's key."""
    pages, session = set(state.PAGE_KEYS), state.SESSION_KEYS
    return sorted(
        name
        for name, value in _key_constants().items()
        if value not in pages and value not in session and not _widget_uses(name, text)
    )


def test_every_other_key_is_a_widgets_key():
    """Non-widget state of a page belongs in its dataclass: a key constant that no widget uses
    (a value stashed in session state for later) fails here."""
    text = "\n".join(path.read_text(encoding="utf-8") for path in _sources())
    assert not _not_widget_keys(text)


def test_the_check_finds_a_stashed_value(monkeypatch):
    monkeypatch.setattr(state, "LAST_CLICK", "last_click", raising=False)
    text = "st.session_state[state.LAST_CLICK] = event\nst.button('Go', key=state.EVAL_RUN)\n"
    assert "LAST_CLICK" in _not_widget_keys(text)
    assert "LAST_CLICK" not in _not_widget_keys(text + "st.text_input('x', key=state.LAST_CLICK)\n")


PAGE_KEY_USE = re.compile(r"\bstate\.(WORKBENCH|COMPARE|EVALUATE)\b(?!_)")


def test_page_state_is_read_through_its_accessor():
    found = {}
    for path in _sources():
        offences = _offences(PAGE_KEY_USE, path.read_text(encoding="utf-8"))
        if offences:
            found[str(path.relative_to(ROOT))] = offences
    assert not found, found


def test_page_state_defaults_are_fresh_per_session():
    first, second = state.WorkbenchState(), state.WorkbenchState()
    first.variables["x"] = "1"
    first.uploaded.append(None)
    assert second.variables == {} and second.uploaded == []
    assert state.CompareState().variants == [] and state.EvaluateState().deletion == {}


def test_parallel_control_keys_come_from_one_definition():
    assert state.WORKBENCH_CONTROLS.method == "method"  # the names links and autosaves were made with
    assert state.COMPARE_CONTROLS.granularity == "compare_granularity"
    assert state.COMPARE_HEATMAP_PREFIX == "compare_heatmap::"
    workbench, compare = vars(state.WORKBENCH_CONTROLS), vars(state.COMPARE_CONTROLS)
    assert {name: "compare_" + key for name, key in workbench.items()} == compare
