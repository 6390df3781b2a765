"""A model that keeps one precision: the other is refused, no weights of it stay, results are unchanged."""

import gc
import weakref

import numpy as np
import pytest
from tiny_models import tiny_gemma3

from salience.core.errors import InputError, ModelLoadError
from salience.core.types import GenerationSettings
from salience.model import loader as loading
from salience.model.language_model import LanguageModel

PROMPT, TARGET = "Taste-likes: Cheese. Suggest", " a quiche."
SETTINGS = GenerationSettings(max_new_tokens=6)


@pytest.fixture(scope="module")
def gemma3_preset(tmp_path_factory, spm_proto):
    directory = tmp_path_factory.mktemp("preset") / "tiny_gemma3"
    tiny_gemma3(spm_proto, seed=3).save_to_preset(str(directory))
    return directory


def _weight_dtypes(model: LanguageModel) -> set[str]:
    return {str(weight.dtype) for weight in model.causal_lm.weights}


def _results(model: LanguageModel, precision: str):
    generation = model.generate(PROMPT, SETTINGS, precision=precision)
    scores = model.salience(PROMPT, TARGET, methods=("grad_l2", "grad_dot_input"), precision=precision)
    return generation, scores


def _assert_same(left, right):
    (generation, scores), (other_generation, other_scores) = left, right
    assert generation.token_ids == other_generation.token_ids
    assert scores.target_log_prob == other_scores.target_log_prob
    for method in ("grad_l2", "grad_dot_input"):
        np.testing.assert_array_equal(scores.scores[method], other_scores.scores[method])


def test_bfloat16_only_refuses_float32_and_drops_its_weights(spm_proto):
    causal_lm = tiny_gemma3(spm_proto, seed=3)
    float32_weights = weakref.ref(causal_lm.backbone.token_embedding.embeddings.value)
    model = LanguageModel(causal_lm, "tiny-gemma3", "test:tiny-gemma3", 256, only=True)
    backbone = weakref.ref(causal_lm.backbone)
    del causal_lm
    gc.collect()
    assert backbone() is None and float32_weights() is None  # nothing keeps the float32 weights
    assert model.precisions == ("bfloat16",) and model.precision == "bfloat16"
    assert _weight_dtypes(model) == {"bfloat16"}
    assert list(model._forwards) == ["bfloat16"]
    for call in (
        lambda: model.forward_for("float32"),
        lambda: model.generate(PROMPT, SETTINGS, precision="float32"),
        lambda: model.salience(PROMPT, TARGET, precision="float32"),
        lambda: model.generate_batch([PROMPT], SETTINGS, precision="float32"),
    ):
        with pytest.raises(InputError, match="This engine serves bfloat16 only.*without its float32 weights"):
            call()
    assert list(model._forwards) == ["bfloat16"]  # no copy was made by the refused calls
    with pytest.raises(InputError, match="Unknown precision 'float16'"):
        model.forward_for("float16")
    assert model.generate(PROMPT, SETTINGS).token_ids  # its own precision still works


@pytest.mark.slow  # over ~5 s: left out of the fast loop
def test_bfloat16_only_equals_the_default_models_copy(spm_proto):
    default = LanguageModel(tiny_gemma3(spm_proto, seed=3), "tiny", "test:tiny", 256)
    only = LanguageModel(tiny_gemma3(spm_proto, seed=3), "tiny", "test:tiny", 256, only=True)
    _assert_same(_results(only, "bfloat16"), _results(default, "bfloat16"))


@pytest.mark.slow  # over ~5 s: left out of the fast loop
@pytest.mark.parametrize("precision", ["bfloat16", "float32"])
def test_preset_loaded_at_one_precision_equals_the_default(gemma3_preset, monkeypatch, precision):
    default = loading.load_model(f"preset:{gemma3_preset}")
    # Every stored tensor of the tiny preset goes through the block-by-block reader, in blocks of a few rows.
    monkeypatch.setattr(loading, "STREAM_BYTES", 0)
    monkeypatch.setattr(loading, "BLOCK_BYTES", 256)
    streamed = []

    class Counted(loading._StoredRows):
        def __init__(self, dataset):
            super().__init__(dataset)
            streamed.append(self.shape)

    monkeypatch.setattr(loading, "_StoredRows", Counted)
    only = loading.load_model(f"preset:{gemma3_preset}", precision=precision, only=True)
    assert len(streamed) == len(only.causal_lm.weights)
    assert only.precisions == (precision,) and only.precision == precision
    assert _weight_dtypes(only) == {precision}
    for mine, reference in zip(
        only.causal_lm.weights, default.forward_for(precision).backbone.weights, strict=True
    ):
        np.testing.assert_array_equal(
            np.asarray(mine.numpy()), np.asarray(reference.numpy()), err_msg=mine.path
        )
    _assert_same(_results(only, precision), _results(default, precision))
    other = "float32" if precision == "bfloat16" else "bfloat16"
    with pytest.raises(InputError, match=f"serves {precision} only"):
        only.generate(PROMPT, SETTINGS, precision=other)


def test_load_model_refuses_an_unknown_precision_before_loading(monkeypatch):
    monkeypatch.setattr(loading, "load_embedded", lambda *args: pytest.fail("loaded anyway"))
    with pytest.raises(InputError, match="Unknown precision 'fp8'"):
        loading.load_model("embedded", precision="fp8", only=True)


def test_the_default_keeps_both_precisions(tiny_gemma3_lm):
    assert tiny_gemma3_lm.precisions == ("bfloat16", "float32")
    assert tiny_gemma3_lm.forward_for("bfloat16") is not tiny_gemma3_lm.forward_for("float32")


def test_a_preset_holds_the_precision_served_and_reads_the_other_on_first_use(gemma3_preset):
    """The default model keeps only its precision's weights until the other is asked for; then
    it reads them from the preset (float32 exact, not bfloat16 cast up)."""
    model = loading.load_model(f"preset:{gemma3_preset}")
    assert model.precisions == ("bfloat16", "float32") and list(model._forwards) == ["bfloat16"]
    assert model.prepared("bfloat16") and not model.prepared("float32")  # the sidebar says so
    assert _weight_dtypes(model) == {"bfloat16"}
    exact = loading.load_model(f"preset:{gemma3_preset}", precision="float32", only=True)
    for mine, reference in zip(
        model.forward_for("float32").backbone.weights, exact.causal_lm.weights, strict=True
    ):
        assert str(mine.dtype) == "float32"
        np.testing.assert_array_equal(
            np.asarray(mine.numpy()), np.asarray(reference.numpy()), err_msg=mine.path
        )
    assert list(model._forwards) == ["bfloat16", "float32"] and model.prepared("float32")


def test_the_other_precision_gone_from_the_preset_is_a_clear_error(tmp_path, gemma3_preset):
    import shutil

    copy = tmp_path / "preset"
    shutil.copytree(gemma3_preset, copy)
    model = loading.load_model(f"preset:{copy}")
    (copy / "model.weights.h5").unlink()
    with pytest.raises(ModelLoadError, match="Could not load the float32 weights"):
        model.generate(PROMPT, SETTINGS, precision="float32")
    assert model.generate(PROMPT, SETTINGS).token_ids  # the served precision still works
