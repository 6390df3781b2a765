"""Convert a Gemma 3 GGUF file (llama.cpp layout) into a KerasHub `Gemma3CausalLM`.

The GGUF holds quantized weights and the SentencePiece vocabulary as metadata.
We dequantize every tensor, undo llama.cpp's `+1` on RMSNorm weights, reshape to
KerasHub's layout and rebuild a SentencePiece `ModelProto` from the vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from salience.core.errors import ModelLoadError

Progress = Callable[[str, float], None]

# GGUF token types (llama.cpp's `gguf.TokenType`) to SentencePiece piece types.
_GGUF_TO_SPM_TYPE = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6}  # normal, unknown, control, user, unused, byte
_CONTROL, _USER_DEFINED = 3, 4
SPACE_MARK = "\u2581"  # SentencePiece's "▁": a space after its normalizer escaped it


@dataclass(frozen=True)
class GemmaGGUFConfig:
    """Architecture facts read from GGUF metadata."""

    vocabulary_size: int
    num_layers: int
    hidden_dim: int
    intermediate_dim: int
    num_query_heads: int
    num_key_value_heads: int
    head_dim: int
    sliding_window_size: int
    layer_norm_epsilon: float
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int


def _field(reader, key: str, default=None):
    field = reader.fields.get(key)
    if field is None:
        if default is not None:
            return default
        raise ModelLoadError(f"GGUF file lacks metadata '{key}'; is it a Gemma 3 model?")
    return field.contents()


def read_config(reader) -> GemmaGGUFConfig:
    """Read the Gemma 3 architecture from an open `gguf.GGUFReader`."""
    arch = _field(reader, "general.architecture")
    if arch != "gemma3":
        raise ModelLoadError(f"GGUF architecture is '{arch}'; only 'gemma3' files can be imported.")
    tokens = reader.fields["tokenizer.ggml.tokens"]
    return GemmaGGUFConfig(
        vocabulary_size=len(tokens.data),
        num_layers=int(_field(reader, "gemma3.block_count")),
        hidden_dim=int(_field(reader, "gemma3.embedding_length")),
        intermediate_dim=int(_field(reader, "gemma3.feed_forward_length")),
        num_query_heads=int(_field(reader, "gemma3.attention.head_count")),
        num_key_value_heads=int(_field(reader, "gemma3.attention.head_count_kv")),
        head_dim=int(_field(reader, "gemma3.attention.key_length")),
        sliding_window_size=int(_field(reader, "gemma3.attention.sliding_window", 512)),
        layer_norm_epsilon=float(np.float32(_field(reader, "gemma3.attention.layer_norm_rms_epsilon", 1e-6))),
        bos_id=int(_field(reader, "tokenizer.ggml.bos_token_id", 2)),
        eos_id=int(_field(reader, "tokenizer.ggml.eos_token_id", 1)),
        pad_id=int(_field(reader, "tokenizer.ggml.padding_token_id", 0)),
        unk_id=int(_field(reader, "tokenizer.ggml.unknown_token_id", 3)),
    )


def build_sentencepiece_proto(reader, config: GemmaGGUFConfig) -> bytes:
    """Rebuild Gemma's SentencePiece BPE model from the GGUF vocabulary."""
    from sentencepiece import sentencepiece_model_pb2 as spm_pb2

    tokens = _field(reader, "tokenizer.ggml.tokens")
    scores = _field(reader, "tokenizer.ggml.scores")
    types = _field(reader, "tokenizer.ggml.token_type")
    model = spm_pb2.ModelProto()
    trainer = model.trainer_spec
    trainer.model_type = spm_pb2.TrainerSpec.BPE
    trainer.vocab_size = len(tokens)
    trainer.byte_fallback = True
    trainer.split_digits = True
    trainer.allow_whitespace_only_pieces = True
    trainer.unk_id, trainer.bos_id = config.unk_id, config.bos_id
    trainer.eos_id, trainer.pad_id = config.eos_id, config.pad_id
    trainer.unk_piece, trainer.bos_piece = tokens[config.unk_id], tokens[config.bos_id]
    trainer.eos_piece, trainer.pad_piece = tokens[config.eos_id], tokens[config.pad_id]
    normalizer = model.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = False
    normalizer.remove_extra_whitespaces = False
    normalizer.escape_whitespaces = True
    kept_control = {config.pad_id, config.eos_id, config.bos_id}
    seen = set(tokens)
    for index, (piece, score, kind) in enumerate(zip(tokens, scores, types)):
        entry = model.pieces.add()
        entry.piece, entry.type = spm_piece(piece, int(kind), index in kept_control)
        if entry.piece != piece and entry.piece in seen:  # never two entries for one piece
            entry.piece = piece
        seen.add(entry.piece)
        entry.score = float(score)
        if index == config.unk_id:
            entry.type = 2
    return model.SerializeToString()


def spm_piece(piece: str, kind: int, keep_control: bool = False) -> tuple[str, int]:
    """A GGUF vocabulary entry as Gemma's own SentencePiece model holds it: (piece, type).

    - llama.cpp pre-normalizes Gemma's whitespace pieces (ids 138-167: 2 to 31 spaces)
      to raw spaces. SentencePiece turns every space into "▁" before it matches pieces,
      so a raw-space piece could never match: "  #" became "▁" + "▁#" instead of
      "▁▁" + "#". Spaces go back to "▁" here.
    - llama.cpp marks Gemma's added special tokens (``<start_of_turn>``, ``<end_of_turn>``,
      ``<unusedN>``, ``<mask>``...) as control pieces, which SentencePiece never matches in
      text: the chat template's turn markers came out as "<", "start", "_", ... Like Gemma's
      own tokenizer (Hugging Face's, and Google's SentencePiece model), they are
      user-defined pieces, matched wherever the text has them. ``<pad>``, ``<eos>`` and
      ``<bos>`` (``keep_control``) stay control pieces: typed as text they stay text.
    """
    spm_type = _GGUF_TO_SPM_TYPE.get(kind, 1)
    if spm_type == _CONTROL and not keep_control:
        spm_type = _USER_DEFINED
    if spm_type != 6 and " " in piece:  # byte pieces are "<0x20>", never a raw space
        piece = piece.replace(" ", SPACE_MARK)
    return piece, spm_type


def _kernel_from_hf(name: str, weight: np.ndarray, num_heads: int, head_dim: int) -> np.ndarray:
    """Reshape an HF-layout (out x in) matrix to the KerasHub kernel layout."""
    if name in ("attn_q", "attn_k", "attn_v"):
        hidden = weight.shape[1]
        return weight.reshape(num_heads, head_dim, hidden).transpose(0, 2, 1)
    if name == "attn_output":
        hidden = weight.shape[0]
        return weight.reshape(hidden, num_heads, head_dim).transpose(1, 2, 0)
    return weight.T  # ffn_gate, ffn_up, ffn_down


def _layer_targets(block, config: GemmaGGUFConfig) -> dict[str, tuple[object, int]]:
    """GGUF tensor suffix -> (Keras variable, number of heads for reshapes)."""
    attention = block.attention
    return {
        "attn_norm": (block.pre_attention_norm.scale, 0),
        "post_attention_norm": (block.post_attention_norm.scale, 0),
        "ffn_norm": (block.pre_ffw_norm.scale, 0),
        "post_ffw_norm": (block.post_ffw_norm.scale, 0),
        "attn_q_norm": (attention.query_norm.scale, 0),
        "attn_k_norm": (attention.key_norm.scale, 0),
        "attn_q": (attention.query_dense.kernel, config.num_query_heads),
        "attn_k": (attention.key_dense.kernel, config.num_key_value_heads),
        "attn_v": (attention.value_dense.kernel, config.num_key_value_heads),
        "attn_output": (attention.output_dense.kernel, config.num_query_heads),
        "ffn_gate": (block.gating_ffw.kernel, 0),
        "ffn_up": (block.gating_ffw_2.kernel, 0),
        "ffn_down": (block.ffw_linear.kernel, 0),
    }


def convert_gguf(path: str | Path, progress: Progress | None = None):
    """Build a `keras_hub.models.Gemma3CausalLM` from a Gemma 3 GGUF file.

    Args:
        path: the GGUF file (any quantization `gguf` can dequantize).
        progress: called with ``(message, fraction)`` as the model is built.

    Returns:
        The float32 `Gemma3CausalLM`, its tokenizer built from the file's vocabulary;
        an unreadable or non-Gemma-3 file raises `ModelLoadError`.

    Example:
    >>> causal_lm = convert_gguf("gemma-3-1b-it-Q4_K_M.gguf")  # doctest: +SKIP
    """
    import gguf
    import keras_hub

    report = progress or (lambda message, fraction: None)
    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"Cannot read GGUF file {path}: {error}") from error
    config = read_config(reader)
    report("Building the tokenizer from the GGUF vocabulary", 0.05)
    tokenizer = keras_hub.models.Gemma3Tokenizer(
        proto=build_sentencepiece_proto(reader, config), has_vision_tokens=False
    )
    report("Creating the Gemma 3 backbone", 0.25)
    backbone = _backbone(config)
    _load_weights(reader, backbone, config, report)
    preprocessor = keras_hub.models.Gemma3CausalLMPreprocessor(
        tokenizer=tokenizer, image_converter=None, sequence_length=1024
    )
    report("Model assembled", 0.9)
    return keras_hub.models.Gemma3CausalLM(backbone=backbone, preprocessor=preprocessor)


def _backbone(config: GemmaGGUFConfig):
    """An empty float32 `Gemma3Backbone` (text only) shaped as ``config`` says."""
    import keras_hub

    return keras_hub.models.Gemma3Backbone(
        vocabulary_size=config.vocabulary_size,
        image_size=None,
        num_layers=config.num_layers,
        num_query_heads=config.num_query_heads,
        num_key_value_heads=config.num_key_value_heads,
        hidden_dim=config.hidden_dim,
        intermediate_dim=config.intermediate_dim,
        head_dim=config.head_dim,
        query_head_dim_normalize=True,
        use_query_key_norm=True,
        use_post_ffw_norm=True,
        use_post_attention_norm=True,
        use_sliding_window_attention=True,
        sliding_window_size=config.sliding_window_size,
        layer_norm_epsilon=config.layer_norm_epsilon,
        dtype="float32",
    )


def _load_weights(reader, backbone, config: GemmaGGUFConfig, report: Progress) -> None:
    """Every backbone weight from the GGUF tensor of the same role, dequantized to float32 and
    laid out as KerasHub keeps it; a missing tensor or a wrong shape raises `ModelLoadError`."""
    import gguf

    targets: dict[str, tuple[object, int]] = {
        "token_embd": (backbone.token_embedding.embeddings, 0),
        "output_norm": (backbone.layer_norm.scale, 0),
    }
    for index, block in enumerate(backbone.transformer_layers):
        for suffix, target in _layer_targets(block, config).items():
            targets[f"blk.{index}.{suffix}"] = target
    tensors = {tensor.name.removesuffix(".weight"): tensor for tensor in reader.tensors}
    missing = sorted(set(targets) - set(tensors))
    if missing:
        raise ModelLoadError(f"GGUF file lacks tensors {missing[:3]}...; it is not a Gemma 3 model.")
    for done, (name, (variable, num_heads)) in enumerate(targets.items()):
        tensor = tensors[name]
        weight = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        suffix = name.rsplit(".", 1)[-1]
        if suffix.endswith("norm"):
            weight = weight - 1.0
        elif num_heads or suffix.startswith("ffn_"):
            weight = _kernel_from_hf(suffix, weight, num_heads, config.head_dim)
        if tuple(weight.shape) != tuple(variable.shape):
            raise ModelLoadError(
                f"GGUF tensor {name} has shape {weight.shape}, expected {tuple(variable.shape)}."
            )
        variable.assign(weight)
        if done % 20 == 0:
            report(f"Dequantizing weights ({done}/{len(targets)})", 0.3 + 0.6 * done / len(targets))
