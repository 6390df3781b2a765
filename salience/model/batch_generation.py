"""Batched generation: B prompts decoded together on the model's own weights.

Prompts are sorted by length and cut into batches of ``batch_size``. The start that
a batch's rows share (a template's fixed text before its first variable) runs once,
for the whole batch; each row's remainder is left-padded to the longest, so the
padding sits between the shared start and the row's own tokens. Every row then
writes its next key and value into the same cache column at each step while keeping
its own positions (its padding does not count) for the rotary embedding. Masks hide
the padding, the future and, for sliding-window layers, keys further back than the
window (in positions, not columns). A row that finishes
(end of text, a stop sequence, its token budget) leaves the batch: the cache keeps
only the rows still running, so finished rows stop costing work.

The blocks are KerasHub's Gemma and Gemma 3 decoder blocks run from their parts
(`GemmaForward._attend` is the attention), with per-row positions; in float32 a row's
tokens are the same as `LanguageModel.generate` gives it alone (tests check this).
Sampling draws from one generator per row, seeded as ``generate`` seeds it, so a
row's output does not depend on which other rows share its batch.

Only float32 is batched (`BATCHED_PRECISIONS`). In bfloat16 the batch changed outputs:
the matrix products and attention sums round to bfloat16 after reductions whose blocking
depends on how many rows and columns share them, so near-ties flipped (measured: 1, 2 and
4 of 12 rows differed from ``generate`` at batch sizes 1, 3 and 8; see docs/PERFORMANCE.md).
There every row is decoded alone on ``generate``'s own path: the same tokens, slower.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from salience.core.errors import InputError
from salience.core.types import Generation, GenerationSettings
from salience.model.decoding import (
    MAX_NEW_TOKENS_LIMIT,
    MIN_CACHE_BUCKET,
    check_text,
    choose_token,
    first_stop,
)
from salience.model.forward import GemmaForward, bucket, compiled, tf
from salience.model.tokenizing import OffsetTokenizer

MAX_BATCH_SIZE = 64
DEFAULT_BATCH_SIZE = 8
CANCELLED = "cancelled"
# Precisions whose batched tokens equal `LanguageModel.generate`'s for every batch size (measured
# and tested); in any other a batch's rows are decoded one at a time.
BATCHED_PRECISIONS = ("float32",)


class DecodingModel(Protocol):
    """What batched decoding needs of a model (`LanguageModel` has it): its token ids for a
    prompt, a forward pass, the stop tokens, the tokenizer, the lock that serializes calls, and
    its own one-prompt decoding (`stream`, for precisions that are not batched)."""

    precision: str  # its default compute precision
    stop_token_ids: set[int]
    tokenizer: OffsetTokenizer
    _lock: AbstractContextManager  # the model's own lock (held one decoding step at a time)

    def prompt_ids(self, prompt: str, settings: GenerationSettings, label: str = "") -> list[int]: ...

    def forward_for(self, precision: str | None = None) -> GemmaForward: ...

    def stream(
        self, prompt: str, settings: GenerationSettings | None = None, precision: str | None = None
    ) -> Iterator[Generation]: ...


def generate_batch(
    model: DecodingModel,
    prompts: Sequence[str],
    settings: GenerationSettings | None = None,
    precision: str | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    stop_sequences: Sequence[Sequence[str]] | None = None,
    seeds: Sequence[int | None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    on_row: Callable[[int, Generation], None] | None = None,
    share_prefix: bool = True,
) -> list[Generation]:
    """Decode continuations of many prompts, ``batch_size`` rows at a time.

    Returns one `Generation` per prompt, in input order: for each row what
    ``model.generate(prompt, settings)`` returns with that row's stop sequences
    (``stop_sequences[i]`` when given, else ``settings.stop_sequences``) and seed
    (``seeds[i]`` when given, else ``settings.seed``). ``seconds`` runs from the
    start of the row's batch; ``first_token_seconds`` is the batch's prefill.

    ``progress(done, total)`` is called after each finished row; ``on_row(index,
    generation)`` as each row finishes (commit it there: nothing finished is lost
    on a cancel or a crash). ``cancelled()`` is polled between steps; once it says
    True the run stops and unfinished rows come back with stop reason
    ``"cancelled"`` and the text so far (``on_row`` is not called for them).
    Bad input raises `InputError`/`ContextLengthError` naming the row (1-based)
    before any decoding. The model's lock is held one step at a time.
    ``share_prefix=False`` runs every row's whole prompt (for tests and benchmarks).
    At a precision not in `BATCHED_PRECISIONS` (bfloat16) every row is its own batch of one,
    decoded by ``model.stream``: the workbench's tokens, whatever ``batch_size`` says.
    """
    settings = settings or GenerationSettings()
    prompts = list(prompts)
    _check_options(prompts, settings, batch_size, stop_sequences, seeds)
    rows = _rows(model, prompts, settings, stop_sequences, seeds)
    forward = model.forward_for(precision)
    report = _Report(len(rows), on_row, progress)
    if not batches_exactly(precision or model.precision):
        return _decode_each_alone(model, rows, settings, precision, cancelled, report)
    return _decode_in_batches(model, forward, rows, settings, batch_size, cancelled, share_prefix, report)


def _check_options(
    prompts: list,
    settings: GenerationSettings,
    batch_size: int,
    stop_sequences: Sequence[Sequence[str]] | None,
    seeds: Sequence[int | None] | None,
) -> None:
    """`generate_batch`'s options, checked before any prompt is tokenized."""
    if not prompts:
        raise InputError("No prompts to generate from: give at least one.")
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or not 1 <= batch_size <= MAX_BATCH_SIZE
    ):
        raise InputError(f"Batch size must be a whole number between 1 and {MAX_BATCH_SIZE}.")
    if not 1 <= settings.max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
        raise InputError(f"Max new tokens must be between 1 and {MAX_NEW_TOKENS_LIMIT}.")
    count = len(prompts)
    for name, values in (("stop_sequences", stop_sequences), ("seeds", seeds)):
        if values is not None and len(values) != count:
            raise InputError(f"{name} has {len(values)} entries for {count} prompts; give one per prompt.")


def _rows(
    model: DecodingModel,
    prompts: list,
    settings: GenerationSettings,
    stop_sequences: Sequence[Sequence[str]] | None,
    seeds: Sequence[int | None] | None,
) -> list[_Row]:
    """One `_Row` per prompt (its ids, stop sequences and generator); errors name the row, 1-based."""
    rows: list[_Row] = []
    for index, prompt in enumerate(prompts):
        label = f"Row {index + 1}"
        if not isinstance(prompt, str):
            raise InputError(f"{label}: the prompt is not text ({type(prompt).__name__}).")
        try:
            check_text(prompt, "prompt")
        except InputError as error:
            raise InputError(f"{label}: {error}") from None
        ids = model.prompt_ids(prompt, settings, label)
        stops = settings.stop_sequences if stop_sequences is None else tuple(stop_sequences[index])
        seed = settings.seed if seeds is None else seeds[index]
        rows.append(_Row(index, prompt, ids, tuple(s for s in stops if s), np.random.default_rng(seed), seed))
    return rows


@dataclass
class _Report:
    """Counts finished rows and tells ``on_row`` and ``progress`` about each."""

    count: int
    on_row: Callable[[int, Generation], None] | None
    progress: Callable[[int, int], None] | None
    done: int = 0

    def finished(self, row: _Row) -> None:
        self.done += 1
        if self.on_row is not None:
            self.on_row(row.index, row.generation)
        if self.progress is not None:
            self.progress(self.done, self.count)


def _decode_each_alone(
    model: DecodingModel,
    rows: list[_Row],
    settings: GenerationSettings,
    precision: str | None,
    cancelled: Callable[[], bool] | None,
    report: _Report,
) -> list[Generation]:
    """Every row on ``model.stream``, one after another (a precision that is not batched)."""
    results: list[Generation | None] = [None] * len(rows)
    for position, row in enumerate(rows):
        _decode_alone(model, row, settings, precision, cancelled)
        results[row.index] = row.generation
        if row.stop_reason == CANCELLED:
            for rest in rows[position + 1 :]:
                results[rest.index] = Generation(rest.prompt, "", (), CANCELLED, 0.0, 0.0)
            break
        report.finished(row)
    return [result for result in results if result is not None]


def _decode_in_batches(
    model: DecodingModel,
    forward: GemmaForward,
    rows: list[_Row],
    settings: GenerationSettings,
    batch_size: int,
    cancelled: Callable[[], bool] | None,
    share_prefix: bool,
    report: _Report,
) -> list[Generation]:
    """The rows in batches of ``batch_size``, similar lengths together; after a cancel the
    rows not started come back empty with stop reason ``"cancelled"``."""
    results: list[Generation | None] = [None] * len(rows)
    decoder = batch_decoder(forward)
    # Similar lengths share a batch: less padding.
    order = sorted(rows, key=lambda row: len(row.ids))
    for first in range(0, len(rows), batch_size):
        group = order[first : first + batch_size]
        for row in _decode(model, decoder, group, settings, cancelled, share_prefix):
            results[row.index] = row.generation
            if row.stop_reason != CANCELLED:
                report.finished(row)
        if cancelled is not None and cancelled():
            for row in order[first + batch_size :]:
                results[row.index] = Generation(row.prompt, "", (), CANCELLED, 0.0, 0.0)
            break
    return [result for result in results if result is not None]


def batches_exactly(precision: str) -> bool:
    """Whether rows at ``precision`` are decoded in batches (their tokens do not depend on the
    batch there); at any other precision `generate_batch` decodes them one at a time."""
    return precision in BATCHED_PRECISIONS


def _decode_alone(model: DecodingModel, row: _Row, settings, precision, cancelled) -> None:
    """Decode one row on `LanguageModel.stream`'s path (the workbench's), with its own stop
    sequences and seed; ``cancelled()`` is polled between tokens."""
    own = replace(settings, stop_sequences=row.stops, seed=row.seed)
    started = time.perf_counter()
    final = None
    for final in model.stream(row.prompt, own, precision):  # noqa: B007 - the last one is the result
        if final.stop_reason == "running" and cancelled is not None and cancelled():
            break
    assert final is not None  # stream yields at least its final generation
    row.new_ids = list(final.token_ids)
    row.text = final.text
    row.stop_reason = CANCELLED if final.stop_reason == "running" else final.stop_reason
    row.seconds = time.perf_counter() - started
    row.first_token_seconds = final.first_token_seconds


@dataclass
class _Row:
    index: int
    prompt: str
    ids: list[int]
    stops: tuple[str, ...]
    rng: np.random.Generator
    seed: int | None = None
    new_ids: list[int] = field(default_factory=list)
    text: str = ""
    stop_reason: str = ""
    seconds: float = 0.0
    first_token_seconds: float = 0.0

    @property
    def generation(self) -> Generation:
        return Generation(
            self.prompt,
            self.text,
            tuple(self.new_ids),
            self.stop_reason,
            self.seconds,
            self.first_token_seconds,
        )


def _decode(model: DecodingModel, decoder: BatchDecoder, rows: list[_Row], settings, cancelled, share_prefix):
    """Decode one batch; yields each row as it finishes (cancelled rows last)."""
    started = time.perf_counter()
    longest = max(len(row.ids) for row in rows)
    # The start all rows share (a template's) runs once; each row keeps at least one token.
    shared = _common_prefix([row.ids for row in rows]) if share_prefix else 0
    size = longest - shared
    pads = np.array([longest - len(row.ids) for row in rows], np.int32)
    token_ids = np.zeros((len(rows), size), np.int32)
    for b, row in enumerate(rows):
        token_ids[b, pads[b] :] = row.ids[shared:]
    cache_length = bucket(longest + settings.max_new_tokens, MIN_CACHE_BUCKET)
    with model._lock:
        logits, cache = decoder.prefill(token_ids, pads, cache_length, rows[0].ids[:shared])
    first_token_seconds = time.perf_counter() - started
    active = list(rows)
    for step in range(settings.max_new_tokens):
        values = logits.numpy()
        tokens: list[int] = []
        keep: list[int] = []
        for b, row in enumerate(active):
            token = choose_token(values[b], settings, row.rng)
            row.first_token_seconds = first_token_seconds
            if token in model.stop_token_ids:
                row.stop_reason = "end_of_text"
            else:
                row.new_ids.append(token)
                row.text = model.tokenizer.decode(row.new_ids)
                cut = first_stop(row.text, row.stops)
                if cut is not None:
                    row.text = row.text[:cut]
                    row.stop_reason = "stop_sequence"
                elif step + 1 == settings.max_new_tokens:
                    row.stop_reason = "max_new_tokens"
            if row.stop_reason:
                row.seconds = time.perf_counter() - started
                yield row
            else:
                keep.append(b)
                tokens.append(token)
        if not keep:
            return
        if cancelled is not None and cancelled():
            break
        if len(keep) < len(active):
            cache, pads = decoder.select(cache, pads, keep)
            active = [active[b] for b in keep]
        column = longest + step
        with model._lock:
            logits, cache = decoder.step(np.array(tokens, np.int32), pads, shared, column, cache)
    for row in active:
        row.stop_reason = CANCELLED
        row.seconds = time.perf_counter() - started
        yield row


def _common_prefix(sequences: list[list[int]]) -> int:
    """Length of the start all sequences share, leaving each at least its last token."""
    limit = min(len(ids) for ids in sequences) - 1
    first = sequences[0]
    for index in range(limit):
        if any(ids[index] != first[index] for ids in sequences[1:]):
            return index
    return max(limit, 0)


def batch_decoder(forward: GemmaForward) -> BatchDecoder:
    """The batch decoder over a forward's backbone (built once per forward)."""
    decoder = getattr(forward, "_batch_decoder", None)
    if decoder is None:
        decoder = BatchDecoder(forward)
        forward._batch_decoder = decoder
    return decoder


class BatchDecoder:
    """Compiled prefill and step over a left-padded batch with per-row positions.

    The cache is a tuple over layers of (keys, values), each [B, C, kv_heads, head_dim];
    column c of row b holds position ``c - pads[b]`` (columns before ``pads[b]`` are padding).
    """

    def __init__(self, forward: GemmaForward):
        self.forward = forward
        self.backbone = forward.backbone
        self.family = forward.family
        layer = tf.TensorSpec(
            [None, None, int(self.backbone.num_key_value_heads), int(self.backbone.head_dim)],
            self.backbone.compute_dtype,
        )
        cache = tuple((layer, layer) for _ in range(forward.num_layers))
        vector = tf.TensorSpec([None], tf.int32)
        scalar = tf.TensorSpec([], tf.int32)
        prefix = tuple(
            (tf.TensorSpec([1, None, *layer.shape[2:]], layer.dtype),) * 2 for _ in range(forward.num_layers)
        )
        self._prefill = compiled(
            self._prefill_graph,
            input_signature=[prefix, tf.TensorSpec([None, None], tf.int32), vector, scalar],
        )
        self._step = compiled(self._step_graph, input_signature=[vector, vector, scalar, scalar, cache])
        self._select = compiled(self._select_graph, input_signature=[cache, vector])

    # ---- public calls --------------------------------------------------------
    def prefill(self, token_ids: np.ndarray, pads: np.ndarray, cache_length: int, prefix_ids=()):
        """Run prompts that share ``prefix_ids`` and go on with left-padded ``token_ids`` [B, S]
        (``pads[b]`` padding tokens first). The shared prefix runs once, for the whole batch.
        Returns (logits [B, V] for each row's next token, cache [B, cache_length])."""
        layer = [1, 0, int(self.backbone.num_key_value_heads), int(self.backbone.head_dim)]
        empty = tf.zeros(layer, self.backbone.compute_dtype)
        prefix = tuple((empty, empty) for _ in range(self.forward.num_layers))
        if len(prefix_ids):
            _, prefix = self._prefill(
                prefix,
                tf.constant([list(prefix_ids)], tf.int32),
                tf.constant([0], tf.int32),
                tf.constant(len(prefix_ids), tf.int32),
            )
        return self._prefill(
            prefix,
            tf.constant(token_ids, tf.int32),
            tf.constant(pads, tf.int32),
            tf.constant(cache_length, tf.int32),
        )

    def step(self, tokens: np.ndarray, pads: np.ndarray, shared: int, column: int, cache):
        """Feed one token per row into cache column ``column``; returns (logits [B, V], cache).
        ``shared``: the length of the prefix the rows share (their padding comes after it)."""
        return self._step(
            tf.constant(tokens, tf.int32),
            tf.constant(pads, tf.int32),
            tf.constant(shared, tf.int32),
            tf.constant(column, tf.int32),
            cache,
        )

    def select(self, cache, pads: np.ndarray, keep: list[int]):
        """Only the rows ``keep`` of the cache and the paddings."""
        return self._select(cache, tf.constant(keep, tf.int32)), pads[keep]

    # ---- graphs ---------------------------------------------------------------
    @staticmethod
    def _select_graph(cache, keep):
        return tuple((tf.gather(keys, keep), tf.gather(values, keep)) for keys, values in cache)

    def _prefill_graph(self, prefix, token_ids, pads, cache_length):
        batch = tf.shape(token_ids)[0]
        size = tf.shape(token_ids)[1]
        shared = tf.shape(prefix[0][0])[1]
        offsets = tf.range(size)
        positions = shared + tf.maximum(offsets[None, :] - pads[:, None], 0)  # [B, S]
        prefix_positions = tf.range(shared)
        real = offsets[None, :] >= pads[:, None]  # [B, S] keys that are not padding
        causal = offsets[None, :] <= offsets[:, None]  # [S(query), S(key)]
        distance = offsets[:, None] - offsets[None, :]
        itself = tf.eye(size, dtype=tf.bool)[None]
        x = tf.cast(self.forward.embed(token_ids), self.backbone.compute_dtype)
        cache = []
        for layer, (prefix_keys, prefix_values) in zip(self.backbone.transformer_layers, prefix):
            prefix_mask = tf.ones([batch, size, shared], tf.bool)
            suffix_mask = tf.logical_and(causal[None], real[:, None, :])  # [B, S, S]
            window = self._window(layer)
            if window is not None:
                prefix_mask = positions[:, :, None] - prefix_positions[None, None, :] < window
                suffix_mask = tf.logical_and(suffix_mask, (distance < window)[None])
            # A padding query sees itself only (its output is never read).
            suffix_mask = tf.logical_or(suffix_mask, itself)
            mask = tf.concat([prefix_mask, suffix_mask], axis=-1)

            def extend(key, value, prefix_keys=prefix_keys, prefix_values=prefix_values):
                tile = [batch, 1, 1, 1]
                return (
                    tf.concat([tf.tile(prefix_keys, tile), key], axis=1),
                    tf.concat([tf.tile(prefix_values, tile), value], axis=1),
                )

            x, keys, values = self._block(layer, x, positions, mask, extend)
            padding = [[0, 0], [0, cache_length - shared - size], [0, 0], [0, 0]]
            cache.append((tf.pad(keys, padding), tf.pad(values, padding)))
        hidden = self.backbone.layer_norm(x[:, -1, :])
        return self.forward._logits(hidden), tuple(cache)

    def _step_graph(self, tokens, pads, shared, column, cache):
        positions = (column - pads)[:, None]  # [B, 1]
        cached = tf.shape(cache[0][0])[1]
        columns = tf.range(cached)
        after = columns[None, :] >= shared  # [1, C] columns past the shared prefix
        key_positions = columns[None, :] - tf.where(after, pads[:, None], 0)  # [B, C]
        real = tf.logical_or(tf.logical_not(after), columns[None, :] >= shared + pads[:, None])
        allowed = tf.logical_and(real, columns[None, :] <= column)  # [B, C]
        x = tf.cast(self.forward.embed(tokens[:, None]), self.backbone.compute_dtype)
        updated = []
        for layer, (key_cache, value_cache) in zip(self.backbone.transformer_layers, cache):
            mask = allowed
            window = self._window(layer)
            if window is not None:
                mask = tf.logical_and(mask, positions - key_positions < window)

            def extend(key, value, key_cache=key_cache, value_cache=value_cache):
                return (
                    tf.concat([key_cache[:, :column], key, key_cache[:, column + 1 :]], axis=1),
                    tf.concat([value_cache[:, :column], value, value_cache[:, column + 1 :]], axis=1),
                )

            x, keys, values = self._block(layer, x, positions, mask[:, None, :], extend)
            updated.append((keys, values))
        hidden = self.backbone.layer_norm(x[:, 0, :])
        return self.forward._logits(hidden), tuple(updated)

    @staticmethod
    def _window(layer):
        attention = layer.attention
        if attention.use_sliding_window_attention:
            return attention.sliding_window_size
        return None

    def _rope(self, attention, x, positions):
        if self.family == "gemma3":
            return attention.rope_layer(x, positions=positions)
        return attention._apply_rope(x, 0, positions=positions)

    def _block(self, layer, x, positions, mask, extend):
        """One decoder block (KerasHub's Gemma or Gemma 3) with per-row positions.

        ``extend(key, value)`` puts this block's keys and values among the cached ones
        (the keys attended to, in the mask's order). Returns (x, keys, values)."""
        attention = layer.attention
        normalized = layer.pre_attention_norm(x)
        query = attention.query_dense(normalized)
        key = attention.key_dense(normalized)
        if getattr(attention, "use_query_key_norm", False):
            query = attention.query_norm(query)
            key = attention.key_norm(key)
        query = self._rope(attention, query, positions)
        key = self._rope(attention, key, positions)
        value = attention.value_dense(normalized)
        key, value = extend(key, value)
        vector = GemmaForward._attend(attention, query, key, value, mask)
        return GemmaForward.block_tail(layer, x, vector), key, value
