"""The workbench page flow with AppTest (a tiny model; the real one runs in the browser tests)."""

from __future__ import annotations

from apptest_helpers import button, text_area

from components import state


def granularity(app):
    return next(s for s in app.selectbox if s.label == "Granularity")


def generate(app):
    button(app, "Generate").click()
    app.run()
    assert not app.exception, app.exception


def test_loads_sample_and_generates(app):
    assert app.session_state[state.WORKBENCH].sample_source == "fewshot-mistake"
    assert "Quiche Lorraine" in text_area(app, "menu_item").value
    assert [t.label for t in app.text_area][1:5] == [
        "first_recommendation",
        "food_likes",
        "food_dislikes",
        "menu_item",
    ]
    generate(app)
    generation = app.session_state[state.WORKBENCH].generation
    assert generation is not None and generation.prompt.endswith("Quiche Lorraine\nAnalysis:")
    assert any("Reading:" in m.value for m in app.markdown)
    assert len(app.dataframe) == 2  # the template-part table, and its numbers for engineers


def test_selecting_a_target_updates_the_rollup(app):
    generate(app)
    granularity(app).set_value("tokens").run()
    table_before = app.dataframe[1].value  # the engineers' numbers, under the plain table
    output = app.session_state[state.WORKBENCH].generation.text
    last = len(output.rstrip())
    app.session_state[state.WORKBENCH].selection = (last - 1, last)  # the last visible token of the output
    app.run()
    table_after = app.dataframe[0].value
    assert sorted(table_after["part"]) == sorted(  # named by their content, not "text 1"
        [
            "“Analyze a menu item…”",
            "first recommendation",
            "“Taste-likes: I've a sweet-tooth…”",
            "food likes",
            "“Taste-dislikes:”",
            "food dislikes",
            "“Suggestion:”",
            "menu item",
            "“Analysis:”",
        ]
    )
    assert list(table_after["share"]) == sorted(table_after["share"], reverse=True)  # strongest first
    assert abs(table_after["share"].sum() - 1.0) < 1e-6
    assert not app.dataframe[1].value["total"].equals(table_before["total"])


def test_editing_a_variable_reruns_with_auto_rerun(app):
    generate(app)
    first = app.session_state[state.WORKBENCH].generated_for
    text_area(app, "food_likes").input("Blue cheese").run()
    assert not app.exception
    assert app.session_state[state.WORKBENCH].generated_for != first
    assert "Blue cheese" in app.session_state[state.WORKBENCH].generation.prompt


def test_editing_without_auto_rerun_marks_output_stale(app):
    generate(app)
    next(t for t in app.toggle if t.label == "Auto re-run").set_value(False).run()
    text_area(app, "food_likes").input("Blue cheese").run()
    assert any("prompt changed" in w.value for w in app.warning)


def test_broken_template_keeps_text_and_says_where(app):
    broken = "Hello {name\nworld"
    text_area(app, "Prompt template").input(broken).run()
    assert not app.exception
    assert any("line 1, column 7" in e.value for e in app.error)
    assert text_area(app, "Prompt template").value == broken
    fixed = "Hello {name}\nworld"
    text_area(app, "Prompt template").input(fixed).run()
    assert [t.label for t in app.text_area][1] == "name"
    assert not app.error


def test_variable_value_survives_template_edits(app):
    text_area(app, "food_likes").input("Truffles").run()
    template = text_area(app, "Prompt template").value
    text_area(app, "Prompt template").input(template.replace("{food_likes}", "nothing")).run()
    assert "food_likes" not in [t.label for t in app.text_area]
    text_area(app, "Prompt template").input(template).run()
    assert text_area(app, "food_likes").value == "Truffles"


def test_invalid_regex_falls_back_to_tokens(app):
    generate(app)
    granularity(app).set_value("regex").run()
    next(t for t in app.text_input if "regular expression" in t.label).input("(unclosed").run()
    assert not app.exception
    assert any("not a valid regular expression" in e.value for e in app.error)


def test_empty_prompt_says_what_to_do(app):
    text_area(app, "Prompt template").input("   ").run()
    assert any("prompt is empty" in w.value for w in app.warning)
    assert button(app, "Generate").disabled


def test_reference_target_is_explained(app):
    text_area(app, "Reference target (optional)").input(" Avoid.").run()
    next(c for c in app.checkbox if c.label.startswith("Explain the reference")).check().run()
    assert not app.exception
    assert any("Reading:" in m.value and "Avoid." in m.value for m in app.markdown)


def test_failed_model_load_keeps_the_previous_model(app):
    previous = app.session_state[state.MODEL_SPEC]
    app.sidebar.selectbox[0].set_value("Local KerasHub preset or GGUF file…")
    app.sidebar.text_input[0].input("preset:/nowhere/at/all")
    next(b for b in app.sidebar.button if b.label == "Load model").click()
    app.run()
    assert not app.exception
    assert any("not a KerasHub preset directory" in e.value for e in app.sidebar.error)
    assert app.session_state[state.MODEL_SPEC] == previous
    assert not button(app, "Generate").disabled


def _tracing_count(app) -> int:
    """How many times the shared model's compiled graphs have been traced, all precisions."""
    from components.model_resource import registry

    model = registry().get(app.session_state[state.MODEL_SPEC])
    return sum(
        graph.experimental_get_tracing_count()
        for forward in model._forwards.values()
        for graph in vars(forward).values()
        if hasattr(graph, "experimental_get_tracing_count")
    )


def test_reruns_keep_the_compiled_graphs(app):
    """Streamlit's per-run keras.backend.clear_session() is switched off for the shared model:
    a new prompt of the same size on a later rerun reuses the graphs the first one traced."""
    from streamlit.runtime.scriptrunner import script_runner

    from components.runtime_fixes import _clean_matplotlib_only

    assert script_runner._clean_problem_modules is _clean_matplotlib_only
    generate(app)
    traced = _tracing_count(app)
    assert traced > 0
    first = app.session_state[state.WORKBENCH].generation
    text_area(app, "menu_item").input("Quiche Lorraine au fromage")  # not a cached result: the model runs
    app.run()
    generate(app)
    second = app.session_state[state.WORKBENCH].generation
    assert second is not None and second.prompt != first.prompt
    assert any("Reading:" in m.value for m in app.markdown)
    assert _tracing_count(app) == traced
