"""The Evaluate page with AppTest on a tiny model: defaults, clear messages, a run that is saved
row by row, resumed, exported, listed and deleted."""

from __future__ import annotations

import pytest

from components import state
from components.evaluation import PASTE
from salience.evaluation.runs import MAX_ROWS

EVALUATE = "app_pages/evaluate.py"


def run(app):
    app.run()
    assert not app.exception, app.exception
    return app


def button(app, label):
    return next(b for b in app.button if b.label.startswith(label))


@pytest.fixture
def page(app):
    app.switch_page(EVALUATE)
    return run(app)


def paste(page, text):
    page.radio(key=state.EVAL_DATA_SOURCE).set_value(PASTE)
    run(page)
    page.text_area(key=state.EVAL_PASTE).input(text)
    return run(page)


def test_opens_with_the_menu_set_and_two_variants(page):
    assert page.title[0].value == "Evaluate a prompt across many inputs"
    assert page.session_state[state.EVAL_SOURCES] == ["Sample: fewshot-mistake", "Sample: fewshot-fixed"]
    assert len(page.session_state[state.EVALUATE].table) >= 30
    assert button(page, "Run 68 generations").disabled is False
    assert not page.error


def test_missing_column_and_bad_data_are_named_before_running(page):
    paste(page, "likes,menu_item\nCheese,Quiche\n")
    warned = " ".join(w.value for w in page.info)
    assert "no column 'first\\_recommendation', 'food\\_likes', 'food\\_dislikes'" in warned
    assert any("Column 'likes' is not used" in c.value for c in page.caption)
    page.session_state[state.EVAL_SOURCES] = ["Sample: headline"]
    run(page)
    assert "add a column named 'article'" in page.error[0].value
    assert button(page, "Run").disabled
    paste(page, "food_likes,food_likes\na,b\n")
    assert "Column 'food_likes' appears twice (columns 1 and 2)" in page.error[0].value
    paste(page, "menu_item\n" + "x\n" * (MAX_ROWS + 1))
    assert "Split it" in page.error[0].value


@pytest.mark.slow  # over ~5 s: left out of the fast loop
def test_run_saves_each_row_and_reopens(page):
    page.session_state[state.EVAL_SOURCES] = ["Sample: fewshot-mistake", "Sample: fewshot-fixed"]
    paste(
        page,
        "food_likes,food_dislikes,menu_item,expected\nCheese,Can't eat eggs,=Quiche,Avoid\nFish,No pork,Sea bass,good\n",
    )
    assert any("never as formulas" in c.value for c in page.caption)
    assert page.selectbox(key=state.EVAL_EXPECTED).value == "expected"  # the new data's expected column
    page.number_input(key=state.EVAL_MAX_NEW_TOKENS).set_value(3)
    page.number_input(key=state.EVAL_BATCH).set_value(2)
    run(page)
    button(page, "Run 4 generations").click()
    run(page)
    evaluation_id = page.session_state[state.EVALUATE].open_id
    assert evaluation_id is not None
    for _ in range(5):  # each script run commits one batch, then reruns
        if any(b.label == "New evaluation" for b in page.button) and not any(
            b.label == "Cancel" for b in page.button
        ):
            break
        run(page)
    frames = [f.value for f in page.dataframe]
    summary = frames[0]
    assert list(summary["Variant"]) == ["fewshot-mistake", "fewshot-fixed"]
    assert all(cell.endswith("/ 2") for cell in summary["Passed"])
    assert "Likely range of the pass rate" in summary.columns  # was "95% interval (Wilson)"
    grid = frames[1]
    assert set(grid["row"]) == {1, 2} and "fewshot-fixed" in grid.columns
    labels = [b.label for b in page.get("download_button")]
    assert labels == ["CSV", "JSONL", "HTML report"]
    # another visit lists it on History, where Open brings it back here without recomputing
    page.session_state[state.EVALUATE].open_id = None
    page.switch_page("app_pages/history.py")
    run(page)
    assert any("4/4 · finished" in m.value for m in page.markdown)
    button(page, "Open").click()
    run(page)
    assert page.session_state[state.EVALUATE].open_id == evaluation_id
    assert page.title[0].value == "Evaluate a prompt across many inputs"
    assert len(page.dataframe) >= 2
    page.switch_page(EVALUATE)  # AppTest's next run follows its own page, not the app's switch_page
    run(page)
    button(page, "Delete").click()
    run(page)
    assert page.session_state[state.EVALUATE].open_id is None
    assert any("No saved evaluations yet." in c.value for c in page.caption)


def test_the_batch_size_note_follows_the_precision(page):
    """bfloat16 rows run one at a time (batches changed outputs there); float32 batches."""
    assert any("bfloat16: rows are generated one at a time" in c.value for c in page.caption)
    page.session_state[state.PRECISION] = "float32"
    run(page)
    assert any("float32: rows are generated a batch at a time" in c.value for c in page.caption)
