"""Tiny Gemma models and a SentencePiece vocabulary built in the test process (no downloads)."""

from __future__ import annotations

import io

import keras
import numpy as np
import sentencepiece as spm

CORPUS = [
    "Keras is a deep learning library for Python.",
    "Analyze a menu item in a restaurant.",
    "Taste-likes: Cheese. Taste-dislikes: eggs.",
    "Recommendation: Avoid. Recommendation: You have to try it.",
    "The quick brown fox jumps over the lazy dog 12345.",
    "Sentences end with periods! Or questions? Lines end with newlines.\n\nParagraphs too.",
    "e.g. Dr. Smith paid 3.5 euros for café au lait 😀 日本語のテキスト",
] * 20


# Gemma's vocabulary holds user-defined pieces for runs of 2 to 31 spaces (ids 138-167).
WHITESPACE_PIECES = ["\u2581" * n for n in range(2, 6)]


def train_sentencepiece(vocab_size: int = 420, whitespace_pieces: bool = False) -> bytes:
    """A BPE SentencePiece model with Gemma's special-token layout and byte fallback
    (and, with ``whitespace_pieces``, Gemma's user-defined pieces for runs of spaces)."""
    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS),
        model_writer=writer,
        vocab_size=vocab_size,
        model_type="bpe",
        pad_id=0,
        eos_id=1,
        bos_id=2,
        unk_id=3,
        pad_piece="<pad>",
        eos_piece="<eos>",
        bos_piece="<bos>",
        unk_piece="<unk>",
        user_defined_symbols=[
            "<start_of_turn>",
            "<end_of_turn>",
            *(WHITESPACE_PIECES if whitespace_pieces else []),
        ],
        byte_fallback=True,
        add_dummy_prefix=False,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        minloglevel=2,
    )
    return writer.getvalue()


def tiny_gemma3(proto: bytes, seed: int = 0, hidden_dim: int = 32, num_layers: int = 2, window: int = 8):
    """A random-weight `Gemma3CausalLM` small enough to run in milliseconds."""
    import keras_hub

    keras.utils.set_random_seed(seed)
    tokenizer = keras_hub.models.Gemma3Tokenizer(proto=proto, has_vision_tokens=False)
    backbone = keras_hub.models.Gemma3Backbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        image_size=None,
        num_layers=num_layers,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=hidden_dim,
        intermediate_dim=2 * hidden_dim,
        head_dim=16,
        query_head_dim_normalize=True,
        use_query_key_norm=True,
        use_post_ffw_norm=True,
        use_post_attention_norm=True,
        use_sliding_window_attention=True,
        sliding_window_size=window,
        dtype="float32",
    )
    _randomize_norms(backbone, seed)
    preprocessor = keras_hub.models.Gemma3CausalLMPreprocessor(
        tokenizer=tokenizer, image_converter=None, sequence_length=64
    )
    return keras_hub.models.Gemma3CausalLM(backbone=backbone, preprocessor=preprocessor)


def tiny_gemma(proto: bytes, seed: int = 0, soft_cap: float | None = None):
    """A random-weight Gemma 1 (or Gemma 2 with ``soft_cap``) `GemmaCausalLM`."""
    import keras_hub

    keras.utils.set_random_seed(seed)
    tokenizer = keras_hub.models.GemmaTokenizer(proto=proto)
    options = {}
    if soft_cap:
        options = {
            "final_logit_soft_cap": soft_cap,
            "attention_logit_soft_cap": 50.0,
            "use_post_ffw_norm": True,
            "use_post_attention_norm": True,
            "use_sliding_window_attention": True,
            "sliding_window_size": 8,
            "query_head_dim_normalize": True,
        }
    backbone = keras_hub.models.GemmaBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=32,
        intermediate_dim=64,
        head_dim=16,
        dtype="float32",
        **options,
    )
    _randomize_norms(backbone, seed)
    preprocessor = keras_hub.models.GemmaCausalLMPreprocessor(tokenizer=tokenizer, sequence_length=64)
    return keras_hub.models.GemmaCausalLM(backbone=backbone, preprocessor=preprocessor)


def _randomize_norms(backbone, seed: int) -> None:
    """Norm scales start at zero; give them values so layouts and offsets matter in tests."""
    rng = np.random.default_rng(seed)
    for weight in backbone.weights:
        if weight.path.endswith("scale"):
            weight.assign(rng.normal(0.0, 0.3, size=weight.shape).astype("float32"))


def llama_cpp_vocabulary(proto: bytes) -> tuple[list[str], list[float], list[int]]:
    """Pieces, scores and types as llama.cpp's converter writes Gemma's vocabulary into a GGUF:
    whitespace pieces with raw spaces, added special tokens (``<start_of_turn>``...) as control."""
    from sentencepiece import sentencepiece_model_pb2 as spm_pb2

    model = spm_pb2.ModelProto()
    model.ParseFromString(proto)
    pieces, scores, types = [], [], []
    for piece in model.pieces:
        text, kind = piece.piece, int(piece.type)
        if kind == 4 and text.startswith("<") and text.endswith(">"):
            kind = 3
        if kind == 4:
            text = text.replace("\u2581", " ")
        pieces.append(text)
        scores.append(piece.score)
        types.append(kind)
    return pieces, scores, types


def write_gguf(
    causal_lm, proto: bytes, path, quantize_embeddings: bool = False, llama_cpp_vocab=False
) -> None:
    """Export a tiny Gemma 3 to GGUF in llama.cpp's layout (HF matrices, norms stored as w + 1).

    ``llama_cpp_vocab`` writes the vocabulary as llama.cpp's converter does for Gemma
    (see `llama_cpp_vocabulary`); otherwise the SentencePiece pieces as they are."""
    import gguf
    from sentencepiece import sentencepiece_model_pb2 as spm_pb2

    backbone = causal_lm.backbone
    model = spm_pb2.ModelProto()
    model.ParseFromString(proto)
    writer = gguf.GGUFWriter(str(path), "gemma3")
    writer.add_block_count(backbone.num_layers)
    writer.add_context_length(512)
    writer.add_embedding_length(backbone.hidden_dim)
    writer.add_feed_forward_length(backbone.intermediate_dim)
    writer.add_head_count(backbone.num_query_heads)
    writer.add_head_count_kv(backbone.num_key_value_heads)
    writer.add_key_length(backbone.head_dim)
    writer.add_value_length(backbone.head_dim)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_sliding_window(backbone.sliding_window_size)
    writer.add_tokenizer_model("llama")
    if llama_cpp_vocab:
        pieces, scores, types = llama_cpp_vocabulary(proto)
    else:
        pieces = [p.piece for p in model.pieces]
        scores = [p.score for p in model.pieces]
        types = [int(p.type) for p in model.pieces]
    writer.add_token_list(pieces)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(2)
    writer.add_eos_token_id(1)
    writer.add_unk_token_id(3)
    writer.add_pad_token_id(0)

    def put(name, array, norm=False):
        array = np.asarray(array, dtype=np.float32)
        if norm:
            array = array + 1.0
        writer.add_tensor(name, np.ascontiguousarray(array))

    embeddings = backbone.token_embedding.embeddings.numpy()
    if quantize_embeddings:
        quantized = gguf.quants.quantize(embeddings, gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor(
            "token_embd.weight",
            quantized,
            raw_shape=quantized.shape,
            raw_dtype=gguf.GGMLQuantizationType.Q8_0,
        )
    else:
        put("token_embd.weight", embeddings)
    put("output_norm.weight", backbone.layer_norm.scale.numpy(), norm=True)
    for i, block in enumerate(backbone.transformer_layers):
        att = block.attention
        prefix = f"blk.{i}."
        for name, layer in (
            ("attn_norm", block.pre_attention_norm),
            ("post_attention_norm", block.post_attention_norm),
            ("ffn_norm", block.pre_ffw_norm),
            ("post_ffw_norm", block.post_ffw_norm),
            ("attn_q_norm", att.query_norm),
            ("attn_k_norm", att.key_norm),
        ):
            put(prefix + name + ".weight", layer.scale.numpy(), norm=True)
        for name, dense in (
            ("attn_q", att.query_dense),
            ("attn_k", att.key_dense),
            ("attn_v", att.value_dense),
        ):
            kernel = dense.kernel.numpy()  # (heads, hidden, head_dim)
            put(prefix + name + ".weight", kernel.transpose(0, 2, 1).reshape(-1, kernel.shape[1]))
        out = att.output_dense.kernel.numpy()  # (heads, head_dim, hidden)
        put(prefix + "attn_output.weight", out.transpose(2, 0, 1).reshape(out.shape[2], -1))
        put(prefix + "ffn_gate.weight", block.gating_ffw.kernel.numpy().T)
        put(prefix + "ffn_up.weight", block.gating_ffw_2.kernel.numpy().T)
        put(prefix + "ffn_down.weight", block.ffw_linear.kernel.numpy().T)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
