"""Every page's session state, after real use, is widget values (under the keys components/state.py
names) plus one dataclass per page and the session-wide model and workspace values — nothing
stashed under a key of its own. AppTest on a tiny model."""

from __future__ import annotations

from apptest_helpers import button, run

from components import state

PREFIXES = (
    state.VARIABLE_WIDGET_PREFIX,
    state.COMPARE_EDIT_PREFIX,
    state.COMPARE_HEATMAP_PREFIX,
    state.EVAL_EDIT_PREFIX,
    state.NOTE_TEXT + "_",
    state.NOTE_RATING + "_",
)


def _named_keys() -> set[str]:
    named = {value for name, value in vars(state).items() if name.isupper() and isinstance(value, str)}
    for controls in (state.WORKBENCH_CONTROLS, state.COMPARE_CONTROLS):
        named.update(vars(controls).values())
    return named


def _child_key_bases() -> tuple[str, ...]:
    """state.child_key(NAME, …) keys, and the submit buttons Streamlit keys after their form."""
    return (*(value + "-" for value in _named_keys()), "FormSubmitter:")


def unknown_keys(app) -> list[str]:
    named, prefixes = _named_keys(), PREFIXES + _child_key_bases()
    return sorted(key for key in app.session_state if key not in named and not key.startswith(prefixes))


def test_pages_keep_no_state_outside_widgets_and_their_dataclasses(app):
    button(app, "Generate").click()
    run(app)
    page = app.session_state[state.WORKBENCH]
    assert isinstance(page, state.WorkbenchState) and page.generation is not None
    page.selection = (0, 3, page.generation.text[:3])
    run(app)
    button(app, "📌 Send to compare").click()
    run(app)
    assert len(app.session_state[state.COMPARE].variants) == 1
    for name in ("compare", "evaluate", "history"):
        app.switch_page(f"app_pages/{name}.py")
        run(app)
    assert isinstance(app.session_state[state.EVALUATE], state.EvaluateState)
    assert not unknown_keys(app), unknown_keys(app)


def test_the_check_finds_a_stashed_key(app):
    app.session_state["compare_pane_text"] = {"uid": "text"}
    assert unknown_keys(app) == ["compare_pane_text"]
