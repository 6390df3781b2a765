"""The template box says how much it holds before it is full (it silently took no more at
100,000 characters): its help names the limit, and from 90% on a line under it counts."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from components.widgets import MAX_TEMPLATE_CHARS


def _editor() -> None:
    from components import state
    from components.widgets import template_editor

    state.init_state()
    template_editor()


def _limit_lines(app: AppTest) -> list[str]:
    return [caption.value for caption in app.caption if "characters the template box holds" in caption.value]


def _box(app: AppTest):
    return next(area for area in app.text_area if area.label == "Prompt template")


def test_the_template_box_names_its_limit_before_it_is_reached():
    app = AppTest.from_function(_editor, default_timeout=60)
    app.run()
    box = _box(app)
    assert f"up to {MAX_TEMPLATE_CHARS:,} characters" in box.help
    assert box.max_chars == MAX_TEMPLATE_CHARS
    assert _limit_lines(app) == []

    _box(app).set_value("x" * 89_999).run()
    assert not app.exception and _limit_lines(app) == []
    _box(app).set_value("x" * 90_000).run()
    assert _limit_lines(app) == [
        "90,000 of the 100,000 characters the template box holds: it takes nothing beyond that "
        "(pasted text is cut there)."
    ]
