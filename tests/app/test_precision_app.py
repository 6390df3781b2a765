"""The compute precision in the sidebar: a precision whose weights are not in memory yet (float32
of a preset served in bfloat16) says that its first answer waits for them."""

from __future__ import annotations

from salience.model.language_model import LanguageModel

WAITS = "The first answer in float32 reads the model's float32 weights"


def _precision_radio(app):
    return next(radio for radio in app.sidebar.radio if radio.label == "Compute precision")


def _captions(app) -> str:
    return " ".join(caption.value for caption in app.sidebar.caption)


def test_a_precision_not_in_memory_yet_says_its_first_answer_waits(app, monkeypatch):
    monkeypatch.setattr(LanguageModel, "prepared", lambda self, precision: precision == "bfloat16")
    app.run()
    assert _precision_radio(app).value == "bfloat16" and WAITS not in _captions(app)
    _precision_radio(app).set_value("float32").run()
    assert not app.exception, app.exception
    assert WAITS in _captions(app)
    _precision_radio(app).set_value("bfloat16").run()
    assert WAITS not in _captions(app)


def test_a_precision_in_memory_says_nothing(app):
    _precision_radio(app).set_value("float32").run()  # the tiny GGUF holds both after warm-up
    assert not app.exception, app.exception
    assert WAITS not in _captions(app)
