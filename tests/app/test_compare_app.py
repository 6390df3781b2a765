"""The compare page with AppTest on a tiny model: pinning, panes, diffs, permalinks, presentation."""

from __future__ import annotations

import pytest
from apptest_helpers import button, pin, run
from streamlit.testing.v1 import AppTest

from components import state
from components.model_resource import MODEL_ENV
from salience.attribution.methods import DEFAULT_METHOD, get_method

APP = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "app.py")

COMPARE = "app_pages/compare.py"


@pytest.fixture
def compared(app):
    pin(app)
    pin(app, "fewshot-fixed")
    app.switch_page(COMPARE)
    return run(app)


@pytest.mark.slow  # over ~5 s: left out of the fast loop
def test_pinned_variants_show_side_by_side_with_diffs(compared):
    variants = compared.session_state[state.COMPARE].variants
    assert [v.name for v in variants] == ["fewshot-mistake", "fewshot-fixed"]
    assert variants[1].variables["first_recommendation"] == "Avoid."
    assert all(v.output is not None for v in variants)  # carried over from the workbench
    assert [h.value for h in compared.subheader][:3] == ["fewshot-mistake", "fewshot-fixed", "Differences"]
    assert any(r"first\_recommendation = “Avoid.”" in c.value for c in compared.caption)  # shown as text
    assert any(m.value.startswith("**Explaining") for m in compared.markdown)
    plain = compared.dataframe[0].value  # for reviewers: labels and words, changed text first
    assert plain.iloc[0]["part"].startswith("“Avoid.” — ")
    assert plain.iloc[0]["what changed"].startswith("text changed; the answer leans on it")
    assert all(not text.startswith("{") for text in plain["part"])
    table = compared.dataframe[1].value  # the numbers, under "Details for engineers"
    row = table[table["part"] == "{first_recommendation}"].iloc[0]
    assert row["status"] == "changed" and row["delta"] == pytest.approx(
        row["fewshot-fixed"] - row["fewshot-mistake"]
    )


def test_linked_controls_and_one_scale(compared, monkeypatch):
    from components import heatmap as heatmap_module

    drawn = {}
    monkeypatch.setattr(heatmap_module, "_heatmap", lambda key, data, **_: drawn.__setitem__(key, data))
    next(r for r in compared.radio if r.label == "Explain").set_value("output")  # every pane has its target
    next(r for r in compared.radio if r.label == "Method").set_value("grad_dot_input")
    run(compared)
    panes = [data for key, data in drawn.items() if key.startswith(state.COMPARE_HEATMAP_PREFIX)]
    assert len(panes) == 2
    assert panes[0]["legend_note"] == panes[1]["legend_note"]  # one scale, said once for all panes
    strongest = [max(abs(c["value"]) for c in data["cells"] if not c["output"]) for data in panes]
    assert max(strongest) == pytest.approx(1.0)  # the scale is the larger pane's own
    assert min(strongest) < 0.999  # the other pane is measured on it, not stretched to its own
    shared = next(h.proto.body for h in compared.get("html") if "shared-legend" in h.proto.body)
    assert panes[0]["legend_note"].split(" · ")[0] in shared
    assert compared.session_state[state.COMPARE_CONTROLS.method] == "grad_dot_input"
    assert (
        compared.session_state[state.WORKBENCH_CONTROLS.method] == DEFAULT_METHOD
    )  # the workbench keeps its own
    caption = next(m.value for m in compared.markdown if m.value.startswith("**Explaining"))
    assert f"· {get_method('grad_dot_input').label} ·" in caption


def test_identical_variants_say_so(app):
    pin(app)
    pin(app)
    app.switch_page(COMPARE)
    run(app)
    assert [v.name for v in app.session_state[state.COMPARE].variants] == [
        "fewshot-mistake",
        "fewshot-mistake (2)",
    ]
    assert any("identical" in c.value for c in app.caption)


def test_a_fifth_variant_is_refused(app):
    for _ in range(5):
        button(app, "📌 Send to compare").click()
        run(app)
    assert len(app.session_state[state.COMPARE].variants) == 4


def test_permalink_restores_everything_in_a_new_session(compared, tiny_gguf, monkeypatch):
    next(r for r in compared.radio if r.label == "Explain").set_value("output")
    run(compared)
    next(s for s in compared.selectbox if s.label == "Granularity").set_value("words")
    run(compared)
    button(compared, "Create link").click()
    run(compared)
    link = compared.session_state[state.COMPARE].permalink_id
    assert link and link in str(compared.query_params["c"])
    assert any(link in c.value for c in compared.code)

    fresh = AppTest.from_file(APP, default_timeout=180)
    fresh.query_params["c"] = link
    fresh.switch_page(COMPARE)
    run(fresh)
    restored = fresh.session_state[state.COMPARE].variants
    original = compared.session_state[state.COMPARE].variants
    assert [v.to_json() for v in restored] == [v.to_json() for v in original]
    assert fresh.session_state[state.COMPARE_TARGET_MODE] == "output"
    assert fresh.session_state[state.COMPARE_CONTROLS.granularity] == "words"
    assert fresh.session_state[state.TEMPLATE] == compared.session_state[state.TEMPLATE]
    assert fresh.session_state[state.WORKBENCH].variables == compared.session_state[state.WORKBENCH].variables


@pytest.mark.parametrize("bad", ["nope", "0123456789ab", "<script>"])
def test_bad_permalink_gives_a_message_not_a_traceback(tiny_gguf, monkeypatch, bad):
    monkeypatch.setenv(MODEL_ENV, f"gguf:{tiny_gguf}")
    test = AppTest.from_file(APP, default_timeout=180)
    test.query_params["c"] = bad
    test.switch_page(COMPARE)
    run(test)
    assert test.error and (
        "not a comparison link" in test.error[0].value or "No saved comparison" in test.error[0].value
    )
    assert not test.dataframe
    button(test, "Continue without the link").click()
    run(test)
    assert not test.error and "c" not in test.query_params


def test_presentation_steps_through_variants(compared):
    button(compared, "Present ▶").click()
    run(compared)
    assert compared.session_state[state.COMPARE].presenting
    assert any(m.value.startswith("### 1 / 2") for m in compared.markdown)
    button(compared, "Next ▶").click()
    run(compared)
    assert any(m.value.startswith("### 2 / 2 · fewshot-fixed") for m in compared.markdown)
    button(compared, "Exit presentation").click()
    run(compared)
    assert not compared.session_state[state.COMPARE].presenting


def test_editing_a_variant_regenerates_it(compared):
    uid = compared.session_state[state.COMPARE].variants[1].uid
    prefix = f"{state.COMPARE_EDIT_PREFIX}{uid}::"
    next(t for t in compared.text_area if t.key == prefix + "var::food_likes").input("Blue cheese")
    run(compared)
    next(b for b in compared.button if b.key == prefix + "apply").click()
    run(compared)
    edited = compared.session_state[state.COMPARE].variants[1]
    assert edited.variables["food_likes"] == "Blue cheese" and edited.output is not None
    assert any(r"food\_likes = “Blue cheese”" in c.value for c in compared.caption)


def test_broken_variant_template_shows_in_its_pane(compared):
    uid = compared.session_state[state.COMPARE].variants[1].uid
    prefix = f"{state.COMPARE_EDIT_PREFIX}{uid}::"
    next(t for t in compared.text_area if t.key == prefix + "template").input("Broken {")
    run(compared)
    assert any("line 1" in e.value for e in compared.error)
    next(b for b in compared.button if b.key == prefix + "apply").click()
    run(compared)
    assert any("template has an error" in w.value for w in compared.warning)


def test_exports_offer_html_csv_json_and_a_png(compared):
    labels = {b.label for b in compared.get("download_button")}
    assert {"HTML", "CSV", "JSON"} <= labels
    button(compared, "PNG").click()
    run(compared)
    assert compared.session_state[state.COMPARE].png[1][:8] == b"\x89PNG\r\n\x1a\n"
    assert "Download PNG" in {b.label for b in compared.get("download_button")}


def test_a_saved_comparison_takes_review_notes(compared, data_dir):
    from workspace.store import Workspace

    button(compared, "Create link").click()
    run(compared)
    link = compared.session_state[state.COMPARE].permalink_id
    next(t for t in compared.text_input if t.label == "Your name (for review notes)").input("Ana").run()
    next(t for t in compared.text_area if t.label == "Note").input("Fixed example wins.")
    next(b for b in compared.button if b.label == "Save note").click()
    run(compared)
    assert any("**Ana**" in m.value and "Fixed example wins." in m.value for m in compared.markdown)
    saved = Workspace.open(f"sqlite:///{data_dir / 'workspace.sqlite3'}")
    assert [n.text for n in saved.notes(comparison_id=link)] == ["Fixed example wins."]
    saved.close()


def test_the_same_variant_as_a_and_b_says_so_and_keeps_the_page(compared):
    # Reached once in a browser test after a link opened: the page stopped with "Duplicate column
    # names" (the engineers' table names its columns after the two variants).
    next(s for s in compared.selectbox if s.label == "B").set_value(0)
    run(compared)
    assert not compared.exception
    assert any("A and B are the same variant" in i.value for i in compared.info)
    assert [h.value for h in compared.subheader][:3] == ["fewshot-mistake", "fewshot-fixed", "Differences"]
    next(s for s in compared.selectbox if s.label == "B").set_value(1)
    run(compared)
    assert not compared.exception and compared.dataframe  # the differences are back
