"""Compiled forward passes over a KerasHub Gemma backbone (Gemma 1, 2 and 3).

Two things make these fast on a CPU:
- salience gathers hidden states at the target positions *before* the
  262k-word output projection, so logits are computed for a handful of rows;
- shapes are padded to a few bucket lengths so each graph is traced once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from salience.core.errors import InputError, UnsupportedModelError


class _TensorFlowOnFirstUse:
    """`tensorflow`, imported when first used: the app's pages import this module (through
    `salience.model.language_model`) and draw at once, while the model's loader thread pays the ~2 s import."""

    def __getattr__(self, name: str):
        import tensorflow

        globals()["tf"] = tensorflow
        return getattr(tensorflow, name)


tf = _TensorFlowOnFirstUse()

MIN_SEQUENCE_BUCKET = 64
MIN_TARGET_BUCKET = 8


@dataclass(frozen=True)
class IntegratedGradients:
    """Path-averaged gradient [n, H], attributions [n, H] and log p at both ends of the path."""

    path_gradient: np.ndarray
    attributions: np.ndarray
    log_prob_input: float
    log_prob_baseline: float

    @property
    def completeness_gap(self) -> float:
        """|Σ attributions − (log p(input) − log p(baseline))| relative to that difference."""
        change = self.log_prob_input - self.log_prob_baseline
        return abs(float(self.attributions.sum()) - change) / max(abs(change), 1e-6)


@dataclass(frozen=True)
class AttentionMaskGradients:
    """How log p(target) depends on every layer's attention to each prompt position.

    ``per_token[j]`` = d log p / d log m_j, where every layer's and head's attention to
    position j is multiplied by m_j and renormalised: what Deletion changes, to first
    order, without moving the later tokens. Positive: attending to j raised log p.
    ``per_segment[n]`` is the same for all keys of segment n, from the queries outside it.
    ``cache`` holds every layer's (keys, values) for the sequence (no padding).
    """

    log_prob: float
    per_token: np.ndarray  # [n]
    per_segment: np.ndarray  # [segments]
    cache: tuple


def compiled(function, **options):
    """``tf.function`` without AutoGraph: the graph functions branch and loop only on Python
    values (layers, flags, None), never on tensors, so nothing needs converting. AutoGraph's
    conversion of every call inside them cost ~4 s of the first click's trace (14.8 s against
    10.6 s for the Deletion estimate, outputs bit-identical)."""
    return tf.function(function, autograph=False, **options)


def bucket(length: int, minimum: int) -> int:
    """Smallest power of two ≥ ``length`` and ≥ ``minimum``."""
    return max(minimum, 1 << max(0, math.ceil(math.log2(max(length, 1)))))


def sequence_bucket(length: int, minimum: int = MIN_SEQUENCE_BUCKET) -> int:
    """Padded length for a sequence: four buckets per doubling (≤ 25% padding)."""
    if length <= minimum:
        return minimum
    step = 1 << max(0, int(math.log2(length)) - 2)
    return -(-length // step) * step


def model_family(causal_lm) -> str:
    """'gemma3' or 'gemma' (Gemma 1 and 2); anything else is not supported."""
    name = type(causal_lm).__name__
    if name == "Gemma3CausalLM":
        return "gemma3"
    if name == "GemmaCausalLM":
        return "gemma"
    raise UnsupportedModelError(
        f"{name} is not supported: salience needs a Gemma 1, 2 or 3 causal LM from KerasHub."
    )


def backbone_copy(backbone, dtype: str):
    """A second backbone with the same weights in another dtype (e.g. bfloat16)."""
    config = backbone.get_config()
    config["dtype"] = dtype
    copy = type(backbone).from_config(config)
    for target, source in zip(copy.weights, backbone.weights):
        target.assign(tf.cast(source, target.dtype))
    return copy


def causal_lm_at(causal_lm, dtype: str):
    """``causal_lm`` with its backbone's weights and compute in ``dtype``: itself when they already
    are, else a new task over a `backbone_copy` (the same preprocessor). Once the caller drops the
    original, its weights are garbage."""
    backbone = causal_lm.backbone
    if str(backbone.compute_dtype) == dtype and str(backbone.variable_dtype) == dtype:
        return causal_lm
    return type(causal_lm)(backbone=backbone_copy(backbone, dtype), preprocessor=causal_lm.preprocessor)


class GemmaForward:
    """Embedding-level forward, cached decoding and target log-probabilities."""

    def __init__(self, backbone, family: str):
        self.family = family
        self.backbone = backbone
        self.hidden_dim = int(self.backbone.hidden_dim)
        self.num_layers = int(self.backbone.num_layers)
        self._embedding_scale = tf.constant(math.sqrt(self.hidden_dim), tf.float32)
        soft_cap = getattr(self.backbone, "final_logit_soft_cap", None)
        # The final soft cap, unless the reversible embedding applies it itself (Gemma 3, and
        # Gemma 2 since KerasHub moved it there): capping twice bent every Gemma 2 logit.
        applied = getattr(self.backbone.token_embedding, "logit_soft_cap", None)
        self._manual_soft_cap = soft_cap if self.family == "gemma" and soft_cap and not applied else None
        # Static shapes (padded sequence length, padded target width) run fastest on
        # oneDNN; callers pad the target width to the whole target's bucket so that
        # choosing another part of the same output reuses the compiled graph.
        self._salience = compiled(self._salience_graph, reduce_retracing=False)
        self._integrated = compiled(self._integrated_graph, reduce_retracing=False)
        self._mean_embedding: np.ndarray | None = None
        self._mask_gradients = compiled(self._mask_gradient_graph, reduce_retracing=False)
        self._masked_log_probs = compiled(self._masked_log_prob_graph, reduce_retracing=False)
        # Deletion: batched target log-probabilities; any batch, length and target width.
        matrix = tf.TensorSpec([None, None], tf.int32)
        self._batch_log_probs = compiled(
            self._batch_log_prob_graph,
            input_signature=[matrix, matrix, matrix, tf.TensorSpec([None, None], tf.float32)],
        )
        if self.family == "gemma3":
            layer_cache = tf.TensorSpec(
                [1, None, int(backbone.num_key_value_heads), int(backbone.head_dim)], backbone.compute_dtype
            )
            self._suffix_log_probs = compiled(
                self._suffix_log_prob_graph,
                input_signature=[
                    tuple((layer_cache, layer_cache) for _ in range(self.num_layers)),
                    tf.TensorSpec([None], tf.int32),
                    matrix,
                    matrix,
                    matrix,
                    tf.TensorSpec([None, None], tf.float32),
                ],
            )
        # Decoding graphs take any prompt and cache length: one trace serves every prompt.
        cache = self._cache_spec()
        scalar = tf.TensorSpec([], tf.int32)
        # One graph feeds the prompt and then each new token (traced once, not twice).
        self._extend = compiled(
            self._extend_graph, input_signature=[tf.TensorSpec([1, None], tf.int32), scalar, scalar, cache]
        )

    # ---- building blocks -------------------------------------------------
    def embed(self, token_ids):
        """Scaled input embeddings, the tensor salience differentiates against (see `_rows_of`)."""
        embeddings = _rows_of(self.backbone.token_embedding.embeddings, token_ids)
        return tf.cast(embeddings, tf.float32) * self._embedding_scale

    def _logits(self, hidden):
        logits = tf.cast(self.backbone.token_embedding(hidden, reverse=True), tf.float32)
        if self._manual_soft_cap:
            logits = tf.tanh(logits / self._manual_soft_cap) * self._manual_soft_cap
        return logits

    def _hidden(self, embeddings):
        mask = tf.ones(tf.shape(embeddings)[:2], dtype=tf.int32)
        x = tf.cast(embeddings, self.backbone.compute_dtype)
        for layer in self.backbone.transformer_layers:
            x = layer(x, padding_mask=mask)
        return self.backbone.layer_norm(x)

    def _target_log_prob_graph(self, embeddings, positions, target_ids, weights):
        """Sum of log p(target_k | prefix) over weighted target rows, per batch item.

        embeddings [B, L, H]; positions, target_ids, weights [T]: the hidden state at
        ``positions[t] - 1`` predicts ``target_ids[t]``.
        """
        hidden = self._hidden(embeddings)
        rows = tf.gather(hidden, positions - 1, axis=1)  # [B, T, H]
        logits = tf.transpose(self._logits(rows), (1, 0, 2))  # [T, B, V]
        picked = tf.gather(logits, target_ids[:, None], axis=2, batch_dims=1)[..., 0]  # [T, B]
        log_probs = picked - tf.reduce_logsumexp(logits, axis=-1)
        return tf.reduce_sum(log_probs * weights[:, None], axis=0)

    # ---- salience ---------------------------------------------------------
    def _salience_graph(self, token_ids, positions, target_ids, weights):
        embeddings = self.embed(token_ids)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(embeddings)
            log_prob = tf.reduce_sum(self._target_log_prob_graph(embeddings, positions, target_ids, weights))
        gradient = tape.gradient(log_prob, embeddings)[0]
        return log_prob, gradient, embeddings[0]

    def _integrated_graph(
        self, token_ids, baseline, path_mask, alphas, alpha_weights, positions, target_ids, weights
    ):
        embeddings = self.embed(token_ids)  # [1, L, H]
        delta = (embeddings - baseline[None]) * path_mask[None, :, None]
        start = embeddings - delta  # the baseline on the path's tokens, the input elsewhere
        scaled = start + alphas[:, None, None] * delta
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(scaled)
            per_alpha = self._target_log_prob_graph(scaled, positions, target_ids, weights)
            log_prob = tf.reduce_sum(per_alpha * alpha_weights)
        return tf.reduce_sum(tape.gradient(log_prob, scaled), axis=0), per_alpha, delta[0]

    def gradients(self, ids: list[int], target_start: int, target_end: int, width: int = 0):
        """Gradient of the target's log-probability w.r.t. each input embedding.

        ``width`` pads the target to at least that many rows (for graph reuse).
        Returns (log_prob, gradient [n, H], embeddings [n, H]) as numpy arrays.
        """
        token_ids, positions, target_ids, weights = self._pack(ids, target_start, target_end, width)
        log_prob, gradient, embeddings = self._salience(token_ids, positions, target_ids, weights)
        n = len(ids)
        return float(log_prob), gradient.numpy()[:n], embeddings.numpy()[:n]

    def baseline_embedding(self, baseline: str, pad_id: int = 0) -> np.ndarray:
        """[H] scaled embedding that stands for an absent token: the padding token's ('pad'),
        the vocabulary's mean ('mean') or zeros ('zero')."""
        if baseline == "zero":
            return np.zeros(self.hidden_dim, np.float32)
        if baseline == "pad":
            return self.embed(tf.constant([[pad_id]], tf.int32)).numpy()[0, 0]
        if baseline == "mean":
            if self._mean_embedding is None:
                table = tf.cast(self.backbone.token_embedding.embeddings, tf.float32)
                self._mean_embedding = (tf.reduce_mean(table, axis=0) * self._embedding_scale).numpy()
            return self._mean_embedding
        raise InputError(f"Unknown baseline '{baseline}'; choose pad, mean or zero.")

    def integrated_gradients(
        self,
        ids: list[int],
        target_start: int,
        target_end: int,
        steps: int,
        baseline: str = "pad",
        batch: int = 4,
        alphas: np.ndarray | None = None,
        alpha_weights: np.ndarray | None = None,
        width: int = 0,
    ) -> IntegratedGradients:
        """Integrated Gradients on the line from a baseline to the input.

        Only the tokens between ``<bos>`` and the target start move along the path
        (``<bos>`` and the target stay as they are), so the baseline means "the
        prompt is absent". Default: the midpoint rule, ``α_k = (k + ½) / steps``.
        Also returns log p at both ends, for the completeness check.
        """
        token_ids, positions, target_ids, weights = self._pack(ids, target_start, target_end, width)
        length = int(token_ids.shape[1])
        path_mask = np.zeros(length, np.float32)
        path_mask[1:target_start] = 1.0
        base = tf.constant(np.broadcast_to(self.baseline_embedding(baseline), (length, self.hidden_dim)))
        if alphas is None:
            alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps
            alpha_weights = np.full(steps, 1.0 / steps, np.float32)
        alphas = np.concatenate([[0.0, 1.0], np.asarray(alphas, np.float32)]).astype(np.float32)
        alpha_weights = np.concatenate([[0.0, 0.0], np.asarray(alpha_weights, np.float32)]).astype(np.float32)
        total = 0.0
        ends: list[float] = []
        delta = None
        for first in range(0, len(alphas), batch):
            chunk = alphas[first : first + batch]
            chunk_weights = alpha_weights[first : first + batch]
            padding = batch - len(chunk)
            summed, per_alpha, delta = self._integrated(
                token_ids,
                base,
                tf.constant(path_mask),
                tf.constant(np.pad(chunk, (0, padding))),
                tf.constant(np.pad(chunk_weights, (0, padding))),
                positions,
                target_ids,
                weights,
            )
            total = total + summed.numpy()
            if first == 0:
                ends = [float(v) for v in per_alpha.numpy()[:2]]
        n = len(ids)
        path_gradient = total[:n]
        attributions = path_gradient * delta.numpy()[:n]
        return IntegratedGradients(
            path_gradient, attributions, log_prob_input=ends[1], log_prob_baseline=ends[0]
        )

    def _pack(self, ids: list[int], target_start: int, target_end: int, width: int = 0):
        length = sequence_bucket(len(ids))
        token_ids = np.zeros((1, length), np.int32)
        token_ids[0, : len(ids)] = ids
        count = target_end - target_start
        width = bucket(max(count, width), MIN_TARGET_BUCKET)
        positions = np.full(width, target_start, np.int32)
        positions[:count] = np.arange(target_start, target_end)
        target_ids = np.zeros(width, np.int32)
        target_ids[:count] = ids[target_start:target_end]
        weights = np.zeros(width, np.float32)
        weights[:count] = 1.0
        return (
            tf.constant(token_ids),
            tf.constant(positions),
            tf.constant(target_ids),
            tf.constant(weights),
        )

    # ---- attention-mask gradients ------------------------------------------
    @staticmethod
    def _project(attention, normalized):
        """Queries, keys and values of a whole sequence, as the layer computes them (positions 0..)."""
        query = attention.query_dense(normalized)
        key = attention.key_dense(normalized)
        if getattr(attention, "use_query_key_norm", False):
            query = attention.query_norm(query)
            key = attention.key_norm(key)
        query = attention._apply_rope(query, 0)
        key = attention._apply_rope(key, 0)
        return query, key, attention.value_dense(normalized)

    def masked_hidden(self, embeddings, key_bias=None, pair_bias=None, key_scale=None, value_scale=None):
        """(final hidden states, every layer's (keys, values)) of whole sequences, with attention
        logits shifted before the softmax: ``key_bias`` [B, L] by key position (−∞ removes a
        position, log m scales its weight before renormalising), ``pair_bias`` [L, L] by
        (query, key), the same in every layer and head. ``key_scale`` / ``value_scale`` [B, L]
        scale key / value vectors. With none of them, the same numbers as the layers' own call.
        """
        length = tf.shape(embeddings)[1]
        offsets = tf.range(length)
        distance = offsets[:, None] - offsets[None, :]  # query − key
        causal = distance >= 0
        dtype = self.backbone.compute_dtype
        x = tf.cast(embeddings, dtype)
        cache = []
        for layer in self.backbone.transformer_layers:
            attention = layer.attention
            allowed = causal
            if attention.use_sliding_window_attention:
                allowed = tf.logical_and(causal, distance < attention.sliding_window_size)
            query, key, value = self._project(attention, layer.pre_attention_norm(x))
            cache.append((key, value))
            if key_scale is not None:
                key = key * tf.cast(key_scale, dtype)[:, :, None, None]
            if value_scale is not None:
                value = value * tf.cast(value_scale, dtype)[:, :, None, None]
            logits, shape = self._attention_logits(attention, query, key)
            if key_bias is not None:
                logits = logits + tf.cast(key_bias, logits.dtype)[:, None, None, None, :]
            if pair_bias is not None:
                logits = logits + tf.cast(pair_bias, logits.dtype)
            probs = tf.cast(attention.softmax(logits, mask=allowed[None, None, None]), logits.dtype)
            vector = tf.einsum("bkgts,bskh->btkgh", probs, value)
            vector = tf.reshape(vector, [shape[0], shape[1], attention.num_query_heads, shape[3]])
            x = self.block_tail(layer, x, vector)
        return self.backbone.layer_norm(x), tuple(cache)

    def _mask_gradient_graph(self, token_ids, positions, target_ids, weights):
        embeddings = self.embed(token_ids)
        length = tf.shape(token_ids)[1]
        pair_bias = tf.zeros([length, length], tf.float32)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(pair_bias)
            hidden, cache = self.masked_hidden(embeddings, pair_bias=pair_bias)
            log_prob = tf.reduce_sum(
                self._picked_log_probs(hidden, positions[None] - 1, target_ids[None], weights[None])
            )
        # pair[t, j]: d log p / d (logit of query t on key j), summed over layers and heads. The
        # segments are summed outside the graph, so one trace serves every segmentation.
        return log_prob, tape.gradient(log_prob, pair_bias), cache

    def attention_mask_gradients(
        self,
        ids: list[int],
        target_start: int,
        target_end: int,
        width: int = 0,
        segments: Sequence[tuple[int, int]] = (),
    ) -> AttentionMaskGradients:
        """d log p(target) / d log m_j, where m_j scales every layer's attention to position j
        (then renormalised): the first-order change when position j is masked out. One backward
        pass. Per segment S (token spans), Σ over the keys in S from every query outside S.
        Also returns each layer's keys and values (the prefix cache for exact Deletion)."""
        token_ids, positions, target_ids, weights = self._pack(ids, target_start, target_end, width)
        log_prob, pair, cache = self._mask_gradients(token_ids, positions, target_ids, weights)
        n = len(ids)
        pair = pair.numpy()[:n, :n].astype(np.float64)
        per_segment = np.zeros(len(segments), np.float64)
        for index, (start, end) in enumerate(segments):
            # Every query's total on the segment's keys, leaving out the rows of the segment's own
            # tokens: once it is deleted nothing reads them.
            on_keys = pair[:, start:end].sum(axis=1)
            per_segment[index] = on_keys.sum() - on_keys[start:end].sum()
        return AttentionMaskGradients(
            log_prob=float(log_prob),
            per_token=pair.sum(axis=0).astype(np.float32),
            per_segment=per_segment.astype(np.float32),
            cache=tuple((keys[:, :n], values[:, :n]) for keys, values in cache),
        )

    def _masked_log_prob_graph(self, token_ids, key_bias, positions, target_ids, weights):
        hidden, _ = self.masked_hidden(self.embed(token_ids), key_bias=key_bias)
        batch = tf.shape(token_ids)[0]
        tile = lambda t: tf.broadcast_to(t[None], [batch, tf.shape(t)[0]])  # noqa: E731
        return self._picked_log_probs(hidden, tile(positions - 1), tile(target_ids), tile(weights))

    def masked_deletion(
        self,
        ids: list[int],
        target_start: int,
        target_end: int,
        segments: Sequence[tuple[int, int]],
        batch: int = 8,
    ) -> np.ndarray:
        """log p(target) − log p(target with each segment masked out of every layer's attention),
        positions unchanged (Deletion moves the later tokens up instead). [segments]"""
        token_ids, positions, target_ids, weights = self._pack(ids, target_start, target_end)
        length = int(token_ids.shape[1])
        bias = np.zeros((len(segments) + 1, length), np.float32)
        for index, (start, end) in enumerate(segments):
            bias[index + 1, start:end] = -1e9
        values = []
        for first in range(0, len(bias), batch):
            chunk = np.pad(bias[first : first + batch], ((0, max(0, batch - len(bias) + first)), (0, 0)))
            values.append(
                self._masked_log_probs(
                    tf.repeat(token_ids, batch, axis=0), tf.constant(chunk), positions, target_ids, weights
                ).numpy()
            )
        values = np.concatenate(values)[: len(bias)]
        return (values[0] - values[1:]).astype(np.float32)

    # ---- deletion ------------------------------------------------------------
    def _picked_log_probs(self, hidden, rows, target_ids, weights):
        """Σ_t weights·log p(target_ids[b, t]) from ``hidden[b, rows[b, t]]``; [B]."""
        picked_hidden = tf.gather(hidden, rows, axis=1, batch_dims=1)  # [B, T, H]
        logits = self._logits(picked_hidden)  # [B, T, V]
        picked = tf.gather(logits, target_ids[..., None], axis=2, batch_dims=2)[..., 0]
        log_probs = picked - tf.reduce_logsumexp(logits, axis=-1)
        return tf.reduce_sum(log_probs * weights, axis=-1)

    def _batch_log_prob_graph(self, token_ids, rows, target_ids, weights):
        return self._picked_log_probs(self._hidden(self.embed(token_ids)), rows, target_ids, weights)

    def batch_log_probs(self, token_ids, rows, target_ids, weights) -> np.ndarray:
        """Target log-probabilities of B whole sequences at once (right-padded; causal, so
        padding never reaches the rows read). ``rows[b, t]`` is the position whose hidden
        state predicts ``target_ids[b, t]``. Any family; no prefix sharing."""
        return self._batch_log_probs(
            tf.constant(token_ids, tf.int32),
            tf.constant(rows, tf.int32),
            tf.constant(target_ids, tf.int32),
            tf.constant(weights, tf.float32),
        ).numpy()

    @functools.cached_property
    def vocabulary_cost(self) -> float:
        """One row through the vocabulary (the output projection), in tokens through every layer:
        the embedding table's size over the layers' weights (~1.7 for Gemma 3 270M)."""
        table = int(np.prod(self.backbone.token_embedding.embeddings.shape))
        layers = sum(
            int(np.prod(w.shape)) for layer in self.backbone.transformer_layers for w in layer.weights
        )
        return table / max(layers, 1)

    @property
    def shares_prefixes(self) -> bool:
        """Whether `suffix_log_probs` is available (Gemma 3's blocks are run from their parts)."""
        return self.family == "gemma3"

    def prefix_cache(self, ids: list[int]):
        """Keys and values of every layer for ``ids`` (no padding): the shared prefix."""
        if not ids:
            return self.empty_cache(0)
        return self.prefill(ids, len(ids))[1]

    def suffix_log_probs(self, cache, prefix_lengths, suffix_ids, rows, target_ids, weights) -> np.ndarray:
        """Target log-probabilities of B sequences that share the start of one prefix.

        Sequence b is ``prefix[:prefix_lengths[b]] + suffix_ids[b]``: each row keeps the
        prefix's cached keys and values up to its own length and runs only its suffix,
        at positions ``prefix_lengths[b] + j``. ``rows`` index the suffix.
        """
        return self._suffix_log_probs(
            cache,
            tf.constant(prefix_lengths, tf.int32),
            tf.constant(suffix_ids, tf.int32),
            tf.constant(rows, tf.int32),
            tf.constant(target_ids, tf.int32),
            tf.constant(weights, tf.float32),
        ).numpy()

    def _suffix_log_prob_graph(self, cache, prefix_lengths, suffix_ids, rows, target_ids, weights):
        size = tf.shape(suffix_ids)[1]
        positions = prefix_lengths[:, None] + tf.range(size)[None, :]  # [B, S]
        cached = tf.shape(cache[0][0])[1]
        key_positions = tf.range(cached)
        # [B, S, P]: a row sees the prefix only up to its own length.
        prefix_mask = tf.broadcast_to(
            key_positions[None, None, :] < prefix_lengths[:, None, None],
            [tf.shape(suffix_ids)[0], size, cached],
        )
        offsets = tf.range(size)
        suffix_mask = offsets[None, :] <= offsets[:, None]  # [S, S] causal
        x = tf.cast(self.embed(suffix_ids), self.backbone.compute_dtype)
        for layer, (keys, values) in zip(self.backbone.transformer_layers, cache):
            window = (
                layer.attention.sliding_window_size if layer.attention.use_sliding_window_attention else None
            )
            if window is not None:
                near_prefix = positions[:, :, None] - key_positions[None, None, :] < window
                layer_prefix_mask = tf.logical_and(prefix_mask, near_prefix)
                near_suffix = offsets[:, None] - offsets[None, :] < window
                layer_suffix_mask = tf.logical_and(suffix_mask, near_suffix)
            else:
                layer_prefix_mask, layer_suffix_mask = prefix_mask, suffix_mask
            every_row = tf.broadcast_to(layer_suffix_mask[None], [tf.shape(x)[0], size, size])
            mask = tf.concat([layer_prefix_mask, every_row], axis=-1)
            x = self._suffix_block(layer, x, positions, keys, values, mask)
        hidden = self.backbone.layer_norm(x)
        return self._picked_log_probs(hidden, rows, target_ids, weights)

    def _suffix_block(self, layer, x, positions, prefix_keys, prefix_values, mask):
        """One Gemma 3 decoder block over suffix tokens that attend to a shared prefix.

        The same sublayers, in the same order, as KerasHub's ``Gemma3DecoderBlock.call``
        with ``CachedGemma3Attention`` (tests compare it with deleting for real)."""
        attention = layer.attention
        batch = tf.shape(x)[0]
        normalized = layer.pre_attention_norm(x)
        query = attention.query_dense(normalized)
        key = attention.key_dense(normalized)
        if attention.use_query_key_norm:
            query = attention.query_norm(query)
            key = attention.key_norm(key)
        query = attention.rope_layer(query, positions=positions)
        key = attention.rope_layer(key, positions=positions)
        value = attention.value_dense(normalized)
        tile = lambda t: tf.broadcast_to(t, tf.concat([[batch], tf.shape(t)[1:]], axis=0))  # noqa: E731
        keys = tf.concat([tile(prefix_keys), key], axis=1)
        values = tf.concat([tile(prefix_values), value], axis=1)
        vector = self._attend(attention, query, keys, values, mask)
        return self.block_tail(layer, x, vector)

    @staticmethod
    def block_tail(layer, x, attended):
        """The rest of a decoder block after attention: output projection, norms, residuals, FFW."""
        output = layer.attention.output_dense(attended)
        if layer.use_post_attention_norm:
            output = layer.post_attention_norm(output)
        x = x + output
        normalized = layer.pre_ffw_norm(x)
        gated = tf.nn.gelu(layer.gating_ffw(normalized), approximate=True) * layer.gating_ffw_2(normalized)
        output = layer.ffw_linear(gated)
        if layer.use_post_ffw_norm:
            output = layer.post_ffw_norm(output)
        return x + output

    @staticmethod
    def _attention_logits(attention, query, keys):
        """Grouped-query attention logits [b, kv heads, groups, t, s] (scaled, soft-capped) and
        the query's shape, as ``CachedGemma3Attention._compute_attention`` computes them."""
        if attention.query_head_dim_normalize:
            scale = 1 / np.sqrt(attention.head_dim)
        else:
            scale = 1 / np.sqrt(attention.hidden_dim // attention.num_query_heads)
        query = query * tf.cast(scale, query.dtype)
        shape = tf.shape(query)
        groups = attention.num_query_heads // attention.num_key_value_heads
        query = tf.reshape(query, [shape[0], shape[1], attention.num_key_value_heads, groups, shape[3]])
        logits = tf.einsum("btkgh,bskh->bkgts", query, keys)
        if attention.logit_soft_cap is not None:
            logits = tf.tanh(logits / attention.logit_soft_cap) * attention.logit_soft_cap
        return logits, shape

    @classmethod
    def _attend(cls, attention, query, keys, values, mask):
        """Grouped-query attention as ``CachedGemma3Attention._compute_attention`` (no fused op)."""
        logits, shape = cls._attention_logits(attention, query, keys)
        probs = attention.softmax(logits, mask=mask[:, None, None, :, :])
        probs = tf.cast(probs, logits.dtype)
        result = tf.einsum("bkgts,bskh->btkgh", probs, values)
        return tf.reshape(result, [shape[0], shape[1], attention.num_query_heads, shape[3]])

    # ---- decoding ----------------------------------------------------------
    def _cache_spec(self):
        kv_heads = int(self.backbone.num_key_value_heads)
        head_dim = int(self.backbone.head_dim)
        dtype = self.backbone.compute_dtype
        if self.family == "gemma3":
            layer = tf.TensorSpec([1, None, kv_heads, head_dim], dtype)
            return tuple((layer, layer) for _ in range(self.num_layers))
        return tf.TensorSpec([1, self.num_layers, 2, None, kv_heads, head_dim], dtype)

    def empty_cache(self, length: int):
        """Zeroed key/value cache for ``length`` positions (the shape of `_cache_spec`)."""
        return tf.nest.map_structure(
            lambda spec: tf.zeros([length if d is None else d for d in spec.shape], spec.dtype),
            self._cache_spec(),
        )

    def _run_cached(self, x, cache, index):
        if self.family == "gemma3":
            updated = []
            for layer, layer_cache in zip(self.backbone.transformer_layers, cache):
                x, layer_cache = layer(x, cache=layer_cache, cache_update_index=index)
                updated.append(layer_cache)
            return x, tuple(updated)
        updated = []
        for i, layer in enumerate(self.backbone.transformer_layers):
            x, layer_cache = layer(x, cache=cache[:, i, ...], cache_update_index=index)
            updated.append(layer_cache)
        return x, tf.stack(updated, axis=1)

    def _extend_graph(self, token_ids, index, last, cache):
        """Feed ``token_ids`` [1, S] at positions ``index`` … ``index + S - 1``; the logits for
        the token after position ``index + last``, and the cache."""
        x = tf.cast(self.embed(token_ids), self.backbone.compute_dtype)
        x, cache = self._run_cached(x, cache, index)
        row = tf.gather(x, [last], axis=1)[0]  # [1, H]: the norm and projection for one row only
        return self._logits(self.backbone.layer_norm(row))[0], cache

    def prefill(self, ids: list[int], cache_length: int):
        """Run the prompt once; returns (logits for the next token, cache)."""
        zero = tf.constant(0, tf.int32)
        last = tf.constant(len(ids) - 1, tf.int32)
        return self._extend(tf.constant([ids], tf.int32), zero, last, self.empty_cache(cache_length))

    def step(self, token_id: int, index: int, cache):
        """Feed one token at ``index``; returns (logits for the next token, cache)."""
        token = tf.constant([[token_id]], tf.int32)
        return self._extend(token, tf.constant(index, tf.int32), tf.constant(0, tf.int32), cache)


def _rows_of(table, token_ids):
    """``table[token_ids]`` from a dense read of the variable, as Keras' `Embedding` gives them.

    Keras gathers from the variable itself (a `ResourceGather`), which puts the variable in
    TensorFlow's copy-on-read mode for good: from then on every dense read — the output
    projection in each decoding step and each salience pass — copied the whole 262k-word
    table (0.34 GB in bfloat16, 0.67 GB in float32) before using it."""
    return tf.gather(tf.convert_to_tensor(table), token_ids)
