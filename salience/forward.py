"""Compiled forward passes over a KerasHub Gemma backbone (Gemma 1, 2 and 3).

Two things make these fast on a CPU:
- salience gathers hidden states at the target positions *before* the
  262k-word output projection, so logits are computed for a handful of rows;
- shapes are padded to a few bucket lengths so each graph is traced once.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from salience.errors import UnsupportedModelError

MIN_SEQUENCE_BUCKET = 64
MIN_TARGET_BUCKET = 8


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


class GemmaForward:
    """Embedding-level forward, cached decoding and target log-probabilities."""

    def __init__(self, backbone, family: str):
        self.family = family
        self.backbone = backbone
        self.hidden_dim = int(self.backbone.hidden_dim)
        self.num_layers = int(self.backbone.num_layers)
        self._embedding_scale = tf.constant(math.sqrt(self.hidden_dim), tf.float32)
        soft_cap = getattr(self.backbone, "final_logit_soft_cap", None)
        # Gemma 3's ReversibleEmbedding applies its own soft cap; Gemma 2 does it in the task.
        self._manual_soft_cap = soft_cap if self.family == "gemma" and soft_cap else None
        # Static shapes (padded sequence length, padded target width) run fastest on
        # oneDNN; callers pad the target width to the whole target's bucket so that
        # choosing another part of the same output reuses the compiled graph.
        self._salience = tf.function(self._salience_graph, reduce_retracing=False)
        self._integrated = tf.function(self._integrated_graph, reduce_retracing=False)
        # Decoding graphs take any prompt and cache length: one trace serves every prompt.
        cache = self._cache_spec()
        scalar = tf.TensorSpec([], tf.int32)
        self._prefill = tf.function(
            self._prefill_graph, input_signature=[tf.TensorSpec([1, None], tf.int32), scalar, cache]
        )
        self._step = tf.function(self._step_graph, input_signature=[scalar, scalar, cache])

    # ---- building blocks -------------------------------------------------
    def embed(self, token_ids):
        """Scaled input embeddings, the tensor salience differentiates against."""
        embeddings = self.backbone.token_embedding(token_ids)
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

    def _integrated_graph(self, token_ids, alphas, alpha_weights, positions, target_ids, weights):
        embeddings = self.embed(token_ids)  # [1, L, H]
        scaled = alphas[:, None, None] * embeddings  # zero-embedding baseline
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(scaled)
            per_alpha = self._target_log_prob_graph(scaled, positions, target_ids, weights)
            log_prob = tf.reduce_sum(per_alpha * alpha_weights)
        return tf.reduce_sum(tape.gradient(log_prob, scaled), axis=0)

    def gradients(self, ids: list[int], target_start: int, target_end: int, width: int = 0):
        """Gradient of the target's log-probability w.r.t. each input embedding.

        ``width`` pads the target to at least that many rows (for graph reuse).
        Returns (log_prob, gradient [n, H], embeddings [n, H]) as numpy arrays.
        """
        token_ids, positions, target_ids, weights = self._pack(ids, target_start, target_end, width)
        log_prob, gradient, embeddings = self._salience(token_ids, positions, target_ids, weights)
        n = len(ids)
        return float(log_prob), gradient.numpy()[:n], embeddings.numpy()[:n]

    def integrated_gradients(
        self,
        ids: list[int],
        target_start: int,
        target_end: int,
        steps: int,
        batch: int = 4,
        alphas: np.ndarray | None = None,
        alpha_weights: np.ndarray | None = None,
        width: int = 0,
    ) -> np.ndarray:
        """Path-averaged gradient ``Σ_k w_k ∇F(α_k x)`` on the line from zero embeddings.

        Default: the midpoint rule, ``α_k = (k + ½) / steps`` and ``w_k = 1 / steps``.
        Returns [n, H]; multiply by the embeddings for Integrated Gradients.
        """
        token_ids, positions, target_ids, weights = self._pack(ids, target_start, target_end, width)
        if alphas is None:
            alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps
            alpha_weights = np.full(steps, 1.0 / steps, np.float32)
        alphas = np.asarray(alphas, np.float32)
        alpha_weights = np.asarray(alpha_weights, np.float32)
        total = 0.0
        for first in range(0, len(alphas), batch):
            chunk = alphas[first : first + batch]
            chunk_weights = alpha_weights[first : first + batch]
            padding = batch - len(chunk)
            summed = self._integrated(
                token_ids,
                tf.constant(np.pad(chunk, (0, padding))),
                tf.constant(np.pad(chunk_weights, (0, padding))),
                positions,
                target_ids,
                weights,
            )
            total = total + summed.numpy()
        return total[: len(ids)]

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

    def _prefill_graph(self, token_ids, last, cache):
        x = tf.cast(self.embed(token_ids), self.backbone.compute_dtype)
        x, cache = self._run_cached(x, cache, 0)
        hidden = self.backbone.layer_norm(x)
        row = tf.gather(hidden, [last], axis=1)[0]  # [1, H]
        return self._logits(row)[0], cache

    def _step_graph(self, token_id, index, cache):
        x = tf.cast(self.embed(tf.reshape(token_id, (1, 1))), self.backbone.compute_dtype)
        x, cache = self._run_cached(x, cache, index)
        return self._logits(self.backbone.layer_norm(x)[0])[0], cache

    def prefill(self, ids: list[int], cache_length: int):
        """Run the prompt once; returns (logits for the next token, cache)."""
        logits, cache = self._prefill(
            tf.constant([ids], tf.int32), tf.constant(len(ids) - 1, tf.int32), self.empty_cache(cache_length)
        )
        return logits, cache

    def step(self, token_id: int, index: int, cache):
        """Feed one token at ``index``; returns (logits for the next token, cache)."""
        return self._step(tf.constant(token_id, tf.int32), tf.constant(index, tf.int32), cache)
