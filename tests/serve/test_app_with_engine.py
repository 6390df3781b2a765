"""The app pointed at an engine deployment (issue 13): AppTest flows with GEMMA_WORKBENCH_ENGINE.

The `engine` fixture serves the tiny model on two replicas in float32; every answer the app shows
must equal the same model run in this process (`local_model`). An engine that is down is said in
one line with a button that moves the session to the in-process model, keeping what was typed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from engine_server import free_port

from components import state
from components.model_resource import MODEL_ENV, registry
from components.sidebar import USE_IN_PROCESS
from salience.core.types import GenerationSettings
from salience.evaluation.runs import Check, parse_data, plan_evaluation, rows_per_chunk, run_evaluation
from salience.prompts.variant import Variant
from salience.prompts.variant_comparison import TargetChoice
from salience.serving.remote import ENGINE_ENV

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
sys.path.insert(0, str(ROOT / "tests" / "app"))
from apptest_helpers import button, run, text_area  # noqa: E402


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    from salience.model.embedded import CACHE_ENV
    from workspace.snapshots import DATA_ENV

    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "data"


def fresh_app():
    from streamlit.testing.v1 import AppTest

    return run(AppTest.from_file(APP, default_timeout=180))


@pytest.fixture
def engine_app(engine, engine_gguf, monkeypatch):
    """The app with the engine set (and the same tiny model as its in-process fallback)."""
    monkeypatch.setenv(ENGINE_ENV, engine.url)
    monkeypatch.setenv(MODEL_ENV, f"gguf:{engine_gguf}")
    registry().get(engine.url, timeout=120)
    return fresh_app()


def generate(app):
    button(app, "Generate").click()
    return run(app)


def sidebar_text(app) -> str:
    parts = [*app.sidebar.caption, *app.sidebar.error, *app.sidebar.warning, *app.sidebar.info]
    return "\n".join(part.value for part in parts)


def test_generate_and_explain_through_the_engine_equal_in_process(engine_app, engine, local_model):
    app = engine_app
    assert app.session_state[state.MODEL_SPEC] == engine.url
    said = sidebar_text(app)
    assert f"on the engine at `{engine.url}` · 2 replicas" in said, said
    precision = next(r for r in app.sidebar.radio if r.label == "Compute precision")
    assert list(precision.options) == ["float32"]  # only what the engine serves
    assert app.session_state[state.PRECISION] == "float32"

    generate(app)
    page = app.session_state[state.WORKBENCH]
    generation = page.generation
    assert generation is not None and generation.text
    settings = page.generated_for[3]
    alone = local_model.generate(generation.prompt, settings, "float32")
    assert (generation.text, generation.token_ids) == (alone.text, alone.token_ids)

    output = generation.text
    last = len(output.rstrip())
    page.selection = (last - 1, last, output[last - 1 : last])  # click the output's last character
    run(app)
    assert any("Reading:" in m.value for m in app.markdown)
    # Nothing ran in this process: every result the page drew came from the engine.
    assert registry().peek(local_model.spec) is None
    explained = [
        (key, result)
        for key, result in list(registry()._results.items())
        if key[0] == "salience" and key[1] == local_model.spec and key[3] == generation.prompt
    ]
    assert {key[5] for key, _ in explained} >= {None}, "the whole output, then the clicked part"
    assert any(key[5] is not None for key, _ in explained)
    for (_, _, precision, prompt, target, span, methods, segments), result in explained:
        here = local_model.salience(
            prompt, target, char_span=span, methods=methods, precision=precision, segments=segments
        )
        assert result.tokens == here.tokens and result.target_token_span == here.target_token_span
        for method in methods:
            np.testing.assert_array_equal(result.scores[method], here.scores[method], err_msg=method)


def test_deletion_runs_on_the_engine(engine_app):
    from components.deletion import runner

    app = generate(engine_app)
    next(r for r in app.radio if r.label == "Method").set_value("grad_l2").run()  # the line speaks
    next(s for s in app.selectbox if s.label == "Granularity").set_value("sentences").run()
    deadline = time.monotonic() + 120
    while not any("Deletion check:" in m.value for m in app.markdown):
        assert time.monotonic() < deadline, [m.value for m in app.markdown]
        job = runner().job(app.session_state[state.DELETION_OWNER])
        if job is not None:
            job.future.exception(timeout=60)
        run(app)
    assert not app.error, [e.value for e in app.error]


def test_compare_explains_every_pane_on_the_engine(engine_app, local_model):
    app = generate(engine_app)
    button(app, "📌 Send to compare").click()
    run(app)
    next(s for s in app.selectbox if s.label == "Sample prompt").set_value("fewshot-fixed")
    generate(run(app))
    button(app, "📌 Send to compare").click()
    run(app)
    app.switch_page("app_pages/compare.py")
    run(app)
    variants = app.session_state[state.COMPARE].variants
    assert [v.name for v in variants] == ["fewshot-mistake", "fewshot-fixed"]
    assert any(m.value.startswith("**Explaining") for m in app.markdown)
    assert not app.error, [e.value for e in app.error]
    assert registry().peek(local_model.spec) is None  # the panes were explained on the engine


def test_the_evaluate_page_runs_on_the_engine(engine_app):
    from components.evaluation import PASTE

    app = engine_app
    app.switch_page("app_pages/evaluate.py")
    run(app)
    app.radio(key=state.EVAL_DATA_SOURCE).set_value(PASTE)
    run(app)
    app.text_area(key=state.EVAL_PASTE).input(
        "food_likes,food_dislikes,menu_item,expected\nCheese,Eggs,Quiche,Avoid\nFish,Pork,Sea bass,good\n"
    )
    app.number_input(key=state.EVAL_MAX_NEW_TOKENS).set_value(3)
    app.number_input(key=state.EVAL_BATCH).set_value(2)
    run(app)
    next(b for b in app.button if b.label.startswith("Run 4 generations")).click()
    run(app)
    for _ in range(3):
        if not any(b.label == "Cancel" for b in app.button):
            break
        run(app)
    summary = app.dataframe[0].value
    assert all(cell.endswith("/ 2") for cell in summary["Passed"]), summary
    assert not app.error, [e.value for e in app.error]


def test_an_evaluation_fans_its_rows_out_over_the_replicas(remote, local_model):
    data = parse_data("likes,item\nCheese,Quiche\nSweets,Onion soup\nFish,Cake\n")
    plan = plan_evaluation(
        [Variant("A", "Likes: {likes}\nItem: {item}\nRecommendation:"), Variant("B", "Item: {item}\nRec:")],
        data,
        [Check("max-words", "100")],
    )
    settings = GenerationSettings(max_new_tokens=4)
    assert rows_per_chunk(remote, 2) == 4 and rows_per_chunk(local_model, 2) == 2
    target = TargetChoice("output")
    there = list(run_evaluation(plan, remote, settings, batch_size=2, target=target))
    here = list(run_evaluation(plan, local_model, settings, batch_size=2, target=target))
    assert [(c.row, c.variant, c.output, c.checks) for c in there] == [
        (c.row, c.variant, c.output, c.checks) for c in here
    ]
    assert [c.shares for c in there] == [c.shares for c in here]


def test_an_engine_that_is_down_is_one_line_and_the_in_process_model_takes_over(engine_gguf, monkeypatch):
    down = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv(ENGINE_ENV, down)
    monkeypatch.setenv(MODEL_ENV, f"gguf:{engine_gguf}")
    # The connection is tried in the background: let it fail first (on a loaded CI machine the
    # page's first run can come before the refused connection is reported).
    with pytest.raises(Exception, match="cannot be reached"):
        registry().get(down, timeout=60)
    app = fresh_app()
    errors = [e.value for e in app.sidebar.error]
    assert len(errors) == 1 and f"The engine at {down} cannot be reached" in errors[0], errors
    assert "\n" not in errors[0]
    assert any(f"No model is answering: The engine at {down} cannot be reached" in i.value for i in app.info)
    assert button(app, "Generate").disabled
    text_area(app, "menu_item").input("Mushroom risotto").run()
    button(app, USE_IN_PROCESS).click()
    run(app)
    assert app.session_state[state.MODEL_SPEC] == f"gguf:{engine_gguf}"
    registry().wait_warm(f"gguf:{engine_gguf}", timeout=300)
    run(app)
    assert not app.sidebar.error
    assert text_area(app, "menu_item").value == "Mushroom risotto"  # nothing typed is lost
    generate(app)
    assert "Mushroom risotto" in app.session_state[state.WORKBENCH].generation.prompt


def test_an_engine_whose_replicas_are_loading_shows_the_loading_notice(monkeypatch):
    """Ray Serve's proxy is healthy but answers 503 until the replicas are up: the page waits with
    the engine's message."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Starting(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server API)
            self.send_response(200 if self.path == "/-/healthz" else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Starting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv(ENGINE_ENV, url)
    try:
        registry().start(url)
        deadline = time.monotonic() + 30
        while "replicas are loading" not in registry().status(url).message:
            assert time.monotonic() < deadline, registry().status(url)
            time.sleep(0.2)
        app = fresh_app()
        shown = [i.value for i in app.info]
        assert any(
            "Waiting for the engine" in i and "its replicas are loading the model" in i for i in shown
        ), shown
        assert not app.sidebar.error
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(Exception, match="cannot be reached"):  # gone now: the wait ends in one line
        registry().get(url, timeout=30)


def test_a_wrong_engine_address_is_one_line(monkeypatch, engine_gguf):
    monkeypatch.setenv(ENGINE_ENV, "localhost:8300")  # no http://
    monkeypatch.setenv(MODEL_ENV, f"gguf:{engine_gguf}")
    app = fresh_app()
    errors = [e.value for e in app.sidebar.error]
    assert errors == ["'localhost:8300' is not an engine address; it should look like http://HOST:PORT."]
    assert any(b.label == USE_IN_PROCESS for b in app.sidebar.button)


def test_an_engine_that_stops_mid_session_offers_the_in_process_model(engine_app, engine_gguf):
    app = generate(engine_app)
    model = registry().model(app.session_state[state.MODEL_SPEC])
    url, retries = model.url, model.retries
    model.url, model.retries = f"http://127.0.0.1:{free_port()}", 0  # the engine went away
    try:
        text_area(app, "menu_item").input("Lentil soup").run()  # auto re-run generates: it fails
        assert any("did not answer" in e.value for e in app.error), [e.value for e in app.error]
        run(app)
        errors = [e.value for e in app.sidebar.error]
        assert len(errors) == 1 and "did not answer" in errors[0], errors
        button(app, USE_IN_PROCESS).click()
        run(app)
    finally:
        model.url, model.retries = url, retries
    registry().wait_warm(f"gguf:{engine_gguf}", timeout=300)
    run(app)
    assert app.session_state[state.MODEL_SPEC] == f"gguf:{engine_gguf}"
    assert text_area(app, "menu_item").value == "Lentil soup"
    assert "Lentil soup" in app.session_state[state.WORKBENCH].generation.prompt


def test_a_restored_state_made_with_another_model_is_said(engine, engine_gguf, monkeypatch):
    monkeypatch.setenv(ENGINE_ENV, engine.url)
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(APP, default_timeout=180)
    app.session_state[state.MODEL_SPEC] = "kaggle:gemma2_2b_en"  # as a permalink or saved state has it
    run(app)
    assert app.session_state[state.MODEL_SPEC] == engine.url  # the engine answers; nothing loads here
    warnings = [w.value for w in app.sidebar.warning]
    assert any("made with `kaggle:gemma2_2b_en`" in w and "the engine serves" in w for w in warnings), (
        warnings
    )


def test_an_engine_that_switched_models_is_said_and_used(engine_app, engine):
    app = engine_app
    model = registry().model(engine.url)
    model.spec = "gguf:/some/other.gguf"  # what this page connected to, unlike what the engine serves
    generate(app)  # the engine refuses: it serves another model now
    assert any("now serves" in e.value for e in app.error), [e.value for e in app.error]
    registry().get(engine.url, timeout=60)  # the next page run connects again
    run(app)
    assert registry().model(engine.url) is not model
    assert any("no longer serves" in i.value for i in app.sidebar.info)
    generate(app)
    assert not app.error


NO_TENSORFLOW = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from streamlit.testing.v1 import AppTest
    from components import state
    from components.model_resource import registry

    registry().get({url!r}, timeout=120)
    app = AppTest.from_file({app!r}, default_timeout=180)
    app.run()
    next(b for b in app.button if b.label == "Generate").click()
    app.run()
    page = app.session_state[state.WORKBENCH]
    text = page.generation.text
    page.selection = (len(text.rstrip()) - 1, len(text.rstrip()), text.rstrip()[-1:])
    app.run()
    print(json.dumps({{
        "exception": [str(e.value) for e in app.exception],
        "reading": any("Reading:" in m.value for m in app.markdown),
        "loaded": sorted(m for m in ("tensorflow", "keras", "keras_hub", "ray") if m in sys.modules),
    }}))
    """
)


def test_the_app_on_an_engine_never_imports_tensorflow(engine, tmp_path):
    code = "import json\n" + NO_TENSORFLOW.format(root=str(ROOT), url=engine.url, app=APP)
    env = {
        **__import__("os").environ,
        ENGINE_ENV: engine.url,
        "GEMMA_WORKBENCH_DATA": str(tmp_path / "data"),
        "GEMMA_WORKBENCH_CACHE": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"exception": [], "reading": True, "loaded": []}, report
