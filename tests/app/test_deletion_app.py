"""Deletion on the workbench (AppTest, tiny model): it checks the first colours (the Deletion
estimate, quiet unless the check moves the strongest part), follows a chosen gradient method with
an agreement line, switches the colours to Deletion, and answers "What if I delete this?"."""

from __future__ import annotations

import time

import pytest
from apptest_helpers import button

from components import state
from components.deletion import DeletionJob, progress_text, runner
from salience.attribution.methods import DEFAULT_METHOD, DELETION


def select(app, label):
    return next(s for s in app.selectbox if s.label == label)


def choose_method(app, name):
    """The method radio under Advanced (the page shows the default's one line otherwise)."""
    next(r for r in app.radio if r.label == "Method").set_value(name).run()
    assert not app.exception, app.exception


def wait_for_check(app, timeout=120.0):
    """Rerun until this session's Deletion check has finished (a finished run may already be
    forgotten by the runner: its result is cached, and the page draws from the cache)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = runner().job(app.session_state[state.DELETION_OWNER])
        if job is not None and not job.future.done():
            job.future.exception(timeout=max(0.1, deadline - time.monotonic()))
        app.run()
        assert not app.exception, app.exception
        job = runner().job(app.session_state[state.DELETION_OWNER])
        if job is None or job.future.done():
            return
    raise AssertionError("the Deletion check did not finish")


def test_the_default_colours_are_checked_quietly_and_switch_only_when_the_check_disagrees(app):
    generate(app)
    assert app.session_state[state.WORKBENCH_CONTROLS.method] == DEFAULT_METHOD
    assert any(m.value.startswith("**Colours:** Deletion estimate (the default)") for m in app.markdown)
    assert any("By Deletion estimate" in m.value for m in app.markdown if "Reading:" in m.value)
    wait_for_check(app)
    assert any(key[0] == "deletion" for key in list(runner()._results))  # the check ran and finished
    reading = next(m.value for m in app.markdown if "Reading:" in m.value)
    moved = markdown_with(app, "A closer check moved the strongest part")
    assert not markdown_with(app, "Deletion check:")  # no agreement line for the default
    if moved:  # the whole page follows the check, and says so once
        assert len(moved) == 1 and "By Deletion," in reading
        assert "now show this check" in moved[0]
    else:
        assert "By Deletion estimate" in reading


def generate(app):
    button(app, "Generate").click()
    app.run()
    assert not app.exception, app.exception


def markdown_with(app, text):
    return [m.value for m in app.markdown if text in m.value]


def wait_for_agreement(app, timeout=120.0):
    """Rerun (as the page's polling fragment would) until the agreement line is drawn."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = markdown_with(app, "Deletion check:")
        if lines:
            return lines[0]
        job = runner().job(app.session_state[state.DELETION_OWNER])
        if job is not None:
            job.future.exception(timeout=max(0.1, deadline - time.monotonic()))
        app.run()
        assert not app.exception, app.exception
    raise AssertionError("no agreement line: " + repr([m.value for m in app.markdown]))


def test_deletion_follows_the_gradient_colours_with_an_agreement_line(app):
    generate(app)
    choose_method(app, "grad_l2")
    select(app, "Granularity").set_value("sentences").run()
    assert any("Reading:" in m.value and "By Grad L2" in m.value for m in app.markdown)
    line = wait_for_agreement(app)
    assert any(
        phrase in line for phrase in ("Deletion confirms the top", "Methods disagree on", "cannot confirm")
    ), line
    assert "sentence" in line
    assert any("compared by position" in c.value for c in app.caption)
    assert any(
        "rank correlation" in c.value
        for e in app.expander
        if e.label == "Details for engineers"
        for c in e.caption
    )


def test_words_over_the_limit_follow_at_sentence_level(app):
    generate(app)
    assert app.session_state[state.WORKBENCH_CONTROLS.granularity] == "sentences"  # the default
    choose_method(app, "grad_l2")
    select(app, "Granularity").set_value("words").run()  # the finer unit, chosen on purpose
    line = wait_for_agreement(app)
    assert "sentence" in line  # the prompt has more words than Deletion runs on: sentences instead


def test_switch_to_deletion_colours(app):
    generate(app)
    choose_method(app, "grad_l2")
    select(app, "Granularity").set_value("sentences").run()
    wait_for_agreement(app)
    button(app, "Show Deletion colours").click().run()
    assert not app.exception, app.exception
    assert app.session_state[state.WORKBENCH_CONTROLS.method] == DELETION
    reading = next(m.value for m in app.markdown if "Reading:" in m.value)
    assert "By Deletion" in reading and ("supported" in reading or "worked against" in reading)
    assert not [b for b in app.button if b.label == "Show Deletion colours"]  # already showing them
    assert "compared with Grad L2" not in reading


def test_deletion_over_the_limit_says_so_and_offers_sentences(app):
    generate(app)
    select(app, "Granularity").set_value("words").run()
    next(r for r in app.radio if r.label == "Method").set_value(DELETION).run()
    assert not app.exception, app.exception
    assert any("over the limit" in w.value and "coarser granularity" in w.value for w in app.warning)
    assert any("By Deletion estimate" in m.value for m in app.markdown)  # first colours meanwhile
    button(app, "Use sentences").click().run()
    assert app.session_state[state.WORKBENCH_CONTROLS.granularity] == "sentences"
    wait_for_agreement(app)
    assert any("By Deletion" in m.value for m in app.markdown if "Reading:" in m.value)


def test_what_if_i_delete_this_shows_both_outputs_and_a_diff(app):
    generate(app)
    select(app, "Granularity").set_value("sentences").run()
    assert select(app, "Prompt segment to delete").value is not None  # the strongest, chosen already
    button(app, "What if I delete this?").click().run()
    assert not app.exception, app.exception
    result = app.session_state[state.WORKBENCH].what_if
    assert "after" in result, result
    prompt = app.session_state[state.WORKBENCH].generation.prompt
    assert result["removed"].strip() and result["removed"] in prompt
    assert result["before"] == app.session_state[state.WORKBENCH].generation.text
    captions = [c.value for c in app.caption]
    assert any(c.startswith("Output without “") for c in captions)
    line = next(m.value for m in app.markdown if m.value.startswith("**Without this"))
    assert "changes from" in line or "stays the same" in line or "has no" in line or "nothing" in line
    assert any("did not change" in c or "compared with the full prompt's output" in c for c in captions)


@pytest.mark.slow  # over ~5 s: left out of the fast loop
def test_one_sentence_prompt_has_nothing_to_compare(app):
    next(t for t in app.text_area if t.label == "Prompt template").input("Cheese is tasty").run()
    next(t for t in app.text_area if t.label.startswith("Reference target")).input(" Avoid.").run()
    next(c for c in app.checkbox if c.label.startswith("Explain the reference")).check().run()
    choose_method(app, "grad_l2")
    select(app, "Granularity").set_value("sentences").run()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("nothing to compare" in i.value for i in app.info):
        time.sleep(0.2)
        app.run()
    assert not app.exception, app.exception
    assert any("only one sentence" in i.value for i in app.info)


def test_a_new_request_cancels_the_running_one():
    import threading

    from salience.core.errors import CancelledError

    started = threading.Event()

    def slow(progress, cancelled):
        started.set()
        for step in range(500):
            if cancelled():
                raise CancelledError("stopped")
            progress(step, 500)
            time.sleep(0.01)
        return "slow"

    first = runner().request("owner-x", ("k", 1), slow)
    assert isinstance(first, DeletionJob)
    assert started.wait(10)
    second = runner().request("owner-x", ("k", 2), lambda progress, cancelled: "fast")
    assert first.cancel.is_set()
    assert isinstance(first.future.exception(timeout=10), CancelledError)
    assert first.error is None  # a cancelled run is not an error to show
    assert second.future.result(timeout=10) == "fast"
    assert runner().request("owner-x", ("k", 2), slow) == "fast"  # cached now


def test_progress_says_what_runs_and_how_far():
    job = DeletionJob(("k",), done=6, total=23)
    assert "5 of 22 sentences" in progress_text(job, "sentences", False)
    assert "in the background" in progress_text(job, "sentences", False)
    assert "the first colours are shown until" in progress_text(job, "sentences", True)
    assert "waiting for the model" in progress_text(DeletionJob(("k",)), "lines", False)
    assert "0 s so far" in progress_text(DeletionJob(("k",)), "lines", False)


def test_compare_panes_each_get_an_agreement_line_and_deletion_as_a_method(app):
    for sample in (None, "fewshot-fixed"):
        if sample:
            select(app, "Sample prompt").set_value(sample).run()
        generate(app)
        button(app, "📌 Send to compare").click().run()
    app.switch_page("app_pages/compare.py").run()
    assert not app.exception, app.exception
    choose_method(app, "grad_l2")  # the default speaks only when its check disagrees
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(markdown_with(app, "Deletion check:")) < 2:
        time.sleep(0.2)
        app.run()
    assert not app.exception, app.exception
    assert len(markdown_with(app, "Deletion check:")) == 2  # one per pane (sentences, the compare default)
    next(r for r in app.radio if r.label == "Method").set_value(DELETION).run()
    assert not app.exception, app.exception
    readings = markdown_with(app, "Reading:")
    assert len(readings) == 2 and all("By Deletion" in r for r in readings)
    assert not [b for b in app.button if b.label == "Show Deletion colours"]
    assert len(markdown_with(app, "Deletion check:")) == 2  # Grad L2 against the Deletion shown


def test_only_runs_for_other_inputs_are_cancelled():
    import threading

    from salience.core.errors import CancelledError

    release = threading.Event()

    def waits(progress, cancelled):
        while not release.is_set():
            if cancelled():
                raise CancelledError("stopped")
            time.sleep(0.01)
        return "done"

    key = ("deletion", "spec", "bfloat16", "prompt", " target", None, ((1, 3),))
    job = runner().request("owner-y", key, waits)
    runner().cancel_unless("owner-y", lambda k: k[3] == "prompt")
    assert not job.cancel.is_set()
    runner().cancel_unless("owner-y", lambda k: k[3] == "another prompt")
    assert isinstance(job.future.exception(timeout=10), CancelledError)
    release.set()
