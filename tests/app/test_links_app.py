"""A visitor whose first page is a link (a saved comparison, a run): the workbench they open
afterwards, in the same session or after a refresh, still has its prompt. AppTest on a tiny model."""

from __future__ import annotations

import os

import pytest
from apptest_helpers import run
from streamlit.testing.v1 import AppTest

from components import state
from components.model_resource import MODEL_ENV, registry
from salience.prompts.samples import load_samples
from workspace.store import Workspace

APP = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "app.py")


def session(page: str, query: dict | None = None) -> AppTest:
    """A new session of the same browser (its cookie), opened on ``page`` once the model is warm
    (the app loads it in the background; alone, this test would otherwise meet it loading)."""
    spec = os.environ.get(MODEL_ENV)
    if spec:
        registry().wait_warm(spec, timeout=300)
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


# The state as ``capture`` wrote it before the page state moved into dataclasses: every value under
# its session key (``sample_source``, ``variables`` and ``selection`` included), every variant with
# ``output`` and ``uid``. Links and autosaved states saved then must still restore.
OLD_STATE = {
    "model_spec": "embedded",
    "precision": "bfloat16",
    "sample_source": "fewshot-mistake",
    "template": "",
    "variables": {},
    "reference_target": "",
    "use_reference": False,
    "max_new_tokens": 48,
    "stop_sequences": "\\n\\n",
    "sampling": False,
    "temperature": 0.8,
    "top_k": 40,
    "top_p": 0.95,
    "seed": 0,
    "chat_template": False,
    "selection": None,
    "method": "grad_l2",
    "granularity": "words",
    "regex": "^Recommendation",
    "aggregation": "sum",
    "intensity": 1.0,
    "compare_target_mode": "anchor",
    "compare_anchor": "Recommendation",
    "compare_reference": "",
    "compare_method": "grad_l2",
    "compare_granularity": "sentences",
    "compare_regex": "^Recommendation",
    "compare_aggregation": "sum",
    "compare_intensity": 1.0,
    "compare_by_sentence": True,
}


def _old_variant(name: str, template: str, variables: dict, uid: str) -> dict:
    return {"name": name, "template": template, "variables": variables, "output": None, "uid": uid}


def _save(data_dir, snapshot: dict) -> str:
    opened = Workspace.open(f"sqlite:///{data_dir / 'workspace.sqlite3'}")
    try:
        return opened.save(snapshot)
    finally:
        opened.close()


@pytest.fixture
def comparison_id(tiny_gguf, data_dir, monkeypatch):
    """A comparison saved by someone who never opened the workbench: no template in its state."""
    monkeypatch.setenv(MODEL_ENV, f"gguf:{tiny_gguf}")
    samples = {example.name: example for example in load_samples()}
    variants = [
        _old_variant(n, samples[n].template, dict(samples[n].variables), f"0000000{i}")
        for i, n in enumerate(("fewshot-mistake", "fewshot-fixed"))
    ]
    return _save(data_dir, {"state": OLD_STATE, "variants": variants})


def test_an_old_link_restores_the_workbench_and_the_comparison(tiny_gguf, data_dir, monkeypatch):
    monkeypatch.setenv(MODEL_ENV, f"gguf:{tiny_gguf}")
    old = {
        **OLD_STATE,
        "template": "Say {x} to {y}",
        "variables": {"x": "hi", "y": "you"},
        "selection": [1, 4, "abc"],
        "method": "grad_dot_input",
        "compare_granularity": "words",
    }
    link = _save(
        data_dir, {"state": old, "variants": [_old_variant("mine", "Say {x}", {"x": "hi"}, "abcd1234")]}
    )
    compare = session("app_pages/compare.py", {"c": link})
    page = compare.session_state[state.WORKBENCH]
    assert compare.session_state[state.TEMPLATE] == "Say {x} to {y}"
    assert page.variables == {"x": "hi", "y": "you"}
    assert compare.session_state[state.VARIABLE_WIDGET_PREFIX + "y"] == "you"
    assert page.selection == (1, 4, "abc")
    assert compare.session_state[state.WORKBENCH_CONTROLS.method] == "grad_dot_input"
    assert compare.session_state[state.COMPARE_CONTROLS.granularity] == "words"
    [variant] = compare.session_state[state.COMPARE].variants
    assert (variant.name, variant.variables, variant.uid) == ("mine", {"x": "hi"}, "abcd1234")
    assert variant.output is not None  # no output was saved: the page generated it
    assert compare.session_state[state.COMPARE].applied_snapshot == link


def test_workbench_after_a_comparison_link_has_its_prompt(comparison_id):
    compare = session("app_pages/compare.py", {"c": comparison_id})
    assert len(compare.session_state[state.COMPARE].variants) == 2
    compare.switch_page("app_pages/workbench.py")
    workbench_is_ready(run(compare))  # same session
    workbench_is_ready(session("app_pages/workbench.py"))  # a refresh: the browser's saved state


def test_workbench_after_history_first_has_its_prompt(tiny_gguf, data_dir, monkeypatch):
    monkeypatch.setenv(MODEL_ENV, f"gguf:{tiny_gguf}")
    session("app_pages/history.py")
    workbench_is_ready(session("app_pages/workbench.py"))
