"""The engine interface: one Protocol, one request type, both models answer it."""

import inspect

import pytest

from salience.attribution.methods import DEFAULT_IG_BASELINE, DEFAULT_IG_STEPS, DEFAULT_METHODS
from salience.model.engine import EngineCalls, SalienceCalls, SalienceRequest
from salience.model.language_model import LanguageModel
from salience.serving.remote import RemoteModel

CALLS = [
    name for name, member in inspect.getmembers(EngineCalls, inspect.isfunction) if not name.startswith("_")
]


@pytest.mark.parametrize("model", [LanguageModel, RemoteModel])
def test_both_models_answer_every_call(model):
    assert {"tokenize", "generate", "stream", "generate_batch", "salience", "salience_for"} <= set(CALLS)
    missing = [name for name in CALLS if not callable(getattr(model, name, None))]
    assert missing == []


def test_the_keyword_form_builds_one_request():
    seen = {}

    class Recorder(SalienceCalls):
        def salience_for(self, request, *, progress=None, cancelled=None):
            seen.update(request=request, progress=progress, cancelled=cancelled)
            return "result"

    stop = lambda: False  # noqa: E731
    assert Recorder().salience("P", " T", methods=("grad_l2",), segments=[(1, 2)], cancelled=stop) == "result"
    assert seen["request"] == SalienceRequest("P", " T", methods=("grad_l2",), segments=[(1, 2)])
    assert seen["cancelled"] is stop and seen["progress"] is None
    with pytest.raises(TypeError):
        Recorder().salience("P", " T", method="grad_l2")  # a misspelt option is refused, as before


def test_defaults_are_the_methods_defaults():
    request = SalienceRequest("P", " T")
    assert request.methods == DEFAULT_METHODS
    assert request.integrated_steps == DEFAULT_IG_STEPS
    assert request.integrated_baseline == DEFAULT_IG_BASELINE
    assert request.char_span is request.token_span is request.segments is request.precision is None


def test_the_wire_form_round_trips():
    request = SalienceRequest(
        "P", " T", char_span=(1, 3), methods=("grad_l2", "occlusion"), segments=[(1, 2), (2, 3)]
    )
    data = request.to_json()
    assert list(data) == [
        "prompt",
        "target",
        "char_span",
        "token_span",
        "methods",
        "integrated_steps",
        "precision",
        "segments",
        "integrated_baseline",
    ]
    assert data["char_span"] == [1, 3] and data["segments"] == [[1, 2], [2, 3]]
    back = SalienceRequest.from_json(data, "float32")
    assert back.char_span == (1, 3) and back.methods == ("grad_l2", "occlusion")
    assert back.segments == [(1, 2), (2, 3)] and back.precision == "float32"
