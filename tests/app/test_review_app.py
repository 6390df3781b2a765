"""A blind review made from Compare's panes (AppTest on a tiny model): one item with the two
replies, and only the values both panes share shown as inputs (never what tells them apart)."""

from __future__ import annotations

from apptest_helpers import button, pin, run

from components import state
from workspace.reviews import load_review, reviews
from workspace.store import Workspace

COMPARE = "app_pages/compare.py"


def test_a_review_from_two_compare_panes(app, data_dir):
    pin(app)
    pin(app, "fewshot-fixed")
    app.switch_page(COMPARE)
    run(app)
    variants = app.session_state[state.COMPARE].variants
    next(t for t in app.text_input if t.label == "Review name").set_value("From Compare")
    button(app, "Create review").click()
    run(app)
    assert not app.exception
    assert any("Review created" in s.value for s in app.success)
    opened = Workspace.open()
    (row,) = reviews(opened)
    review = load_review(opened, row.id)
    opened.close()
    assert review.name == "From Compare" and review.names == ("fewshot-mistake", "fewshot-fixed")
    (item,) = review.items
    assert item.outputs == (variants[0].output, variants[1].output)
    assert "first_recommendation" not in item.inputs and item.inputs["menu_item"] == "Quiche Lorraine"
    assert item.values[1]["first_recommendation"] == "Avoid."
