"""Cold start: pages draw while the model loads, Generate waits for it, a failed load says why."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from apptest_helpers import button

from components import state
from components.model_resource import FAILED, LOADING, MODEL_ENV, READY, WARM_UP_STEPS, registry

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


@pytest.fixture
def slow_model(tiny_gguf, monkeypatch):
    """A fresh spec whose load waits for ``release`` and counts its calls; the tiny model behind it."""
    import salience.model.loader

    real_load = salience.model.loader.load_model
    release = threading.Event()
    calls = []

    def load(spec, progress=None):
        calls.append(spec)
        assert release.wait(60), "the test never released the load"
        return real_load(f"gguf:{tiny_gguf}", progress)

    spec = f"gguf:/slow/{uuid.uuid4().hex}.gguf"
    monkeypatch.setattr(salience.model.loader, "load_model", load)
    monkeypatch.setenv(MODEL_ENV, spec)
    yield spec, release, calls
    release.set()
    registry().wait_warm(spec, timeout=120)  # no TensorFlow work left running at exit


def fresh_app():
    from streamlit.testing.v1 import AppTest

    test = AppTest.from_file(APP, default_timeout=60)
    test.run()
    assert not test.exception, test.exception
    return test


@pytest.mark.slow  # over ~5 s: left out of the fast loop
def test_page_renders_while_the_model_loads_and_generate_runs_when_ready(slow_model):
    spec, release, _ = slow_model
    app = fresh_app()
    assert registry().status(spec).phase == LOADING
    assert any(title.value == "Prompt workbench" for title in app.title)
    assert any("Loading the model (about" in info.value for info in app.info)
    assert "Quiche Lorraine" in next(t for t in app.text_area if t.label.startswith("menu")).value
    generate = button(app, "Generate")
    assert not generate.disabled
    generate.click()
    app.run()
    assert not app.exception, app.exception
    assert app.session_state[state.WORKBENCH].generate_pending
    assert any("Generate runs as soon as the model is ready" in info.value for info in app.info)
    assert app.session_state[state.WORKBENCH].generation is None
    release.set()
    registry().wait_warm(spec, timeout=120)
    assert registry().status(spec).phase == READY
    assert set(WARM_UP_STEPS) <= set(registry().timings(spec))  # every warm-up step ran
    app.run()  # what the page's status poll does once the model is ready
    assert not app.exception, app.exception
    assert app.session_state[state.WORKBENCH].generation is not None
    assert not app.session_state[state.WORKBENCH].generate_pending
    assert not any("Loading the model" in info.value for info in app.info)


def test_template_editing_works_while_the_model_loads(slow_model):
    app = fresh_app()
    menu = next(t for t in app.text_area if t.label.startswith("menu"))
    menu.input("Mushroom risotto").run()
    assert not app.exception, app.exception
    assert app.session_state[state.WORKBENCH].variables["menu_item"] == "Mushroom risotto"


def test_two_visitors_at_start_up_share_one_load(slow_model):
    spec, release, calls = slow_model
    visitors = [threading.Thread(target=registry().start, args=(spec,)) for _ in range(8)]
    for visitor in visitors:
        visitor.start()
    for visitor in visitors:
        visitor.join()
    first, second = fresh_app(), fresh_app()
    release.set()
    models = {id(registry().get(spec, timeout=120)) for _ in range(3)}
    assert len(calls) == 1 and len(models) == 1
    for page in (first, second):
        page.run()
        assert not page.exception, page.exception


def test_a_failed_load_says_why_and_the_app_keeps_working(monkeypatch):
    spec = f"preset:/nowhere/{uuid.uuid4().hex}"
    monkeypatch.setenv(MODEL_ENV, spec)
    with pytest.raises(Exception, match="not a KerasHub preset directory"):
        registry().get(spec, timeout=60)
    app = fresh_app()
    assert registry().status(spec).phase == FAILED
    assert any("not a KerasHub preset directory" in error.value for error in app.sidebar.error)
    # The main area says why, not only "no model" (the sidebar has the details and the choices).
    assert any(
        "No model is answering" in info.value and "not a KerasHub preset directory" in info.value
        for info in app.info
    ), [info.value for info in app.info]
    assert button(app, "Generate").disabled
    menu = next(t for t in app.text_area if t.label.startswith("menu"))
    menu.input("Mushroom risotto").run()
    assert not app.exception, app.exception
    app.switch_page("app_pages/history.py").run()
    assert not app.exception, app.exception
    assert any(title.value == "History" for title in app.title)


def test_pages_import_without_tensorflow():
    """A page draws before TensorFlow has loaded: only the model's loader thread imports it (~2 s)."""
    modules = "components.sidebar, components.widgets, components.deletion, components.comparison, salience.model.language_model"
    code = f"import sys, {modules}; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_warm_up_gives_way_to_a_visitors_request(slow_model):
    """A visitor's own request traces the same graphs: the warm-up stops instead of competing."""
    spec, release, _ = slow_model
    models = registry()
    models.start(spec)
    models.visitor_work(spec)  # e.g. a restored session regenerating as soon as the model loads
    release.set()
    models.wait_warm(spec, timeout=120)
    assert models.status(spec).phase == READY
    assert not set(WARM_UP_STEPS) & set(models.timings(spec)), models.timings(spec)


def test_warm_up_runs_every_step_when_nobody_asks(slow_model):
    spec, release, _ = slow_model
    models = registry()
    models.start(spec)
    release.set()
    models.wait_warm(spec, timeout=120)
    assert set(WARM_UP_STEPS) <= set(models.timings(spec)), models.timings(spec)


def test_ready_comes_before_the_integrated_gradients_graph(slow_model, monkeypatch):
    """The first Generate's and the first click's graphs make the model ready; Integrated
    Gradients' is traced after that, in the background (only then is the start settled)."""
    from salience.model.language_model import LanguageModel

    spec, release, _ = slow_model
    real_salience = LanguageModel.salience
    tracing, finish = threading.Event(), threading.Event()

    def salience(model, prompt, target, **options):
        if "integrated_gradients" in options.get("methods", ()):
            tracing.set()
            assert finish.wait(60), "the test never let the background step finish"
        return real_salience(model, prompt, target, **options)

    monkeypatch.setattr(LanguageModel, "salience", salience)
    models = registry()
    models.start(spec)
    release.set()
    assert tracing.wait(120), "Integrated Gradients' graph was never warmed"
    status = models.status(spec)
    assert status.phase == READY and not status.settled
    assert {"decode graphs", "salience graph", "warm"} <= set(models.timings(spec))
    finish.set()
    models.wait_warm(spec, timeout=120)
    assert models.status(spec).settled and "integrated gradients graph" in models.timings(spec)


@pytest.mark.slow  # over ~5 s: left out of the fast loop
def test_a_rebuilt_cache_is_said_in_the_sidebar(tiny_gguf, monkeypatch):
    """What the load had to do (a damaged cache rebuilt) reaches the page, not only the log."""
    import salience.model.loader

    real_load = salience.model.loader.load_model
    said = "The model cache was damaged (model.weights.h5 changed) and has been rebuilt."

    def load(spec, progress=None):
        model = real_load(f"gguf:{tiny_gguf}", progress)
        model.notice = said
        return model

    spec = f"gguf:/rebuilt/{uuid.uuid4().hex}.gguf"
    monkeypatch.setattr(salience.model.loader, "load_model", load)
    monkeypatch.setenv(MODEL_ENV, spec)
    registry().start(spec)
    registry().wait_warm(spec, timeout=120)
    app = fresh_app()
    assert any(said in info.value for info in app.sidebar.info), [i.value for i in app.sidebar.info]
