"""A visitor whose first page is a link (a saved comparison, a run): the workbench they open
afterwards, in the same session or after a refresh, still has its prompt. AppTest on a tiny model."""

from __future__ import annotations

import pytest
from apptest_helpers import run
from streamlit.testing.v1 import AppTest

from components import state
from components.model_resource import MODEL_ENV
from salience.compare import Variant
from salience.samples import load_samples
from workspace.store import Workspace

APP = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "app.py")


def session(page: str, query: dict | None = None) -> AppTest:
    """A new session of the same browser (its cookie), opened on ``page``."""
    test = AppTest.from_file(APP, default_timeout=180)
    test.session_state[state.BROWSER_ID] = "browser-1"
    for key, value in (query or {}).items():
        test.query_params[key] = value
    test.switch_page(page)
    return run(test)


def workbench_is_ready(app: AppTest) -> None:
    assert app.session_state[state.TEMPLATE].startswith("Analyze a menu item"), app.session_state[
        state.TEMPLATE
    ]
    assert not next(b for b in app.button if b.label == "Generate").disabled
    assert not [w.value for w in app.warning if "prompt is empty" in str(w.value)]


@pytest.fixture
def comparison_id(tiny_gguf, data_dir, monkeypatch):
    """A comparison saved by someone who never opened the workbench: no template in its state."""
    monkeypatch.setenv(MODEL_ENV, f"gguf:{tiny_gguf}")
    samples = {example.name: example for example in load_samples()}
    variants = [
        Variant(n, samples[n].template, dict(samples[n].variables))
        for n in ("fewshot-mistake", "fewshot-fixed")
    ]
    opened = Workspace.open(f"sqlite:///{data_dir / 'workspace.sqlite3'}")
    try:
        return opened.save(
            {
                "state": {key: state.DEFAULTS.get(key) for key in state.SNAPSHOT_KEYS},
                "variants": [v.to_json() for v in variants],
            }
        )
    finally:
        opened.close()


def test_workbench_after_a_comparison_link_has_its_prompt(comparison_id):
    compare = session("app_pages/compare.py", {"c": comparison_id})
    assert len(compare.session_state[state.COMPARE_VARIANTS]) == 2
    compare.switch_page("app_pages/workbench.py")
    workbench_is_ready(run(compare))  # same session
    workbench_is_ready(session("app_pages/workbench.py"))  # a refresh: the browser's saved state


def test_workbench_after_history_first_has_its_prompt(tiny_gguf, data_dir, monkeypatch):
    monkeypatch.setenv(MODEL_ENV, f"gguf:{tiny_gguf}")
    session("app_pages/history.py")
    workbench_is_ready(session("app_pages/workbench.py"))
