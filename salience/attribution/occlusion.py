"""Deletion (occlusion): how the target's log-probability changes when a segment is removed.

A segment's score is ``log p(target | prompt) − log p(target | prompt without it)``
in nats: positive means removing it makes the target less likely (it supported
the target), negative that removing it makes the target more likely. Segments are
**removed outright** (the tokens after them move up; nothing is put in their
place), and the prompt's own tokens are reused, so no segment is re-tokenized.

Fast path (Gemma 3): every variant shares the original sequence up to its deleted
segment, so the prefix's keys and values are computed once and each variant runs
only what follows the deletion, batched with the others (`GemmaForward.suffix_log_probs`).
Other families run each variant in full, still batched.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from salience.core.errors import CancelledError, InputError

MAX_DELETION_SEGMENTS = 64
# Rows × target tokens per batch: bounds the [B, T, vocabulary] logits (~256 × 262k floats).
ROWS_TIMES_TARGET = 256
# Rows × suffix tokens per batch: bounds activations and attention, and how long one batch holds
# the model (a cancel, or another session's call, waits for the current batch). Measured on the
# embedded model, 1,076 tokens, 50 sentences, bfloat16, one core: 4096 → 93 s in 13 batches (the
# longest 12–23 s), 2048 → 73–85 s, 1024 → 78 s in 26 batches (the longest 7–8 s).
ROWS_TIMES_SUFFIX = 1024


@dataclass(frozen=True)
class DeletionScores:
    """Per-segment Deletion scores and the log-probability they are measured against."""

    segments: tuple[tuple[int, int], ...]  # token spans that were deleted, in order
    scores: np.ndarray  # [len(segments)] nats: positive = removing it lowers log p(target)
    log_prob: float  # log p(target | whole prompt), computed the same way
    seconds: float

    def per_token(self, length: int) -> np.ndarray:
        """[length] array where each token carries its segment's score (others zero)."""
        values = np.zeros(length, np.float32)
        for (start, end), score in zip(self.segments, self.scores):
            values[start:end] = score
        return values


def deletable_segments(segments: Sequence[tuple[int, int]], target_start: int) -> list[tuple[int, int]]:
    """The token spans that can be deleted: cut at the target start, never ``<bos>`` (token 0)."""
    kept = []
    for start, end in segments:
        start, end = max(int(start), 1), min(int(end), target_start)
        if start < end:
            kept.append((start, end))
    return sorted(set(kept))


def check_segment_count(count: int, limit: int = MAX_DELETION_SEGMENTS) -> None:
    """Refuse more segments than Deletion runs in reasonable time, saying what to do instead."""
    if count > limit:
        raise InputError(
            f"Deletion runs one pass per segment: {count} segments is over the limit of {limit}. "
            "Choose a coarser granularity (sentences, lines, paragraphs or template parts)."
        )


def deletion_scores(
    forward,
    ids: Sequence[int],
    target_start: int,
    target_end: int,
    segments: Sequence[tuple[int, int]],
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    share_prefix: bool = True,
    lock=None,
) -> DeletionScores:
    """Delete each segment (token spans before ``target_start``) and score the change in nats.

    ``progress(done, total)`` is called after each batch; ``cancelled()`` returning
    True stops with `CancelledError`. ``share_prefix=False`` runs every variant in full
    (the slower path other families use; kept for benchmarks and tests). ``lock`` (the
    model's) is held for one batch at a time, so other sessions' calls interleave.
    """
    began = time.perf_counter()
    spans = deletable_segments(segments, target_start)
    check_segment_count(len(spans))
    ids = [int(i) for i in ids[:target_end]]
    # Row 0 deletes nothing: log p(target | prompt) by the same arithmetic as the others.
    rows = [(target_start, target_start), *spans]
    lock = lock if lock is not None else contextlib.nullcontext()
    if share_prefix and forward.shares_prefixes:
        values = _shared_prefix(forward, ids, target_start, target_end, rows, progress, cancelled, lock)
    else:
        values = _full_sequences(forward, ids, target_start, target_end, rows, progress, cancelled, lock)
    base = float(values[0])
    return DeletionScores(
        segments=tuple(spans),
        scores=(base - values[1:]).astype(np.float32),
        log_prob=base,
        seconds=time.perf_counter() - began,
    )


def _batches(order: list[int], lengths: Sequence[int], width: int) -> list[list[int]]:
    """Group row indices (longest first) so each batch stays within the size budgets."""
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = max([lengths[i] for i in current] + [lengths[index]])
        rows = len(current) + 1
        if current and (rows * width > ROWS_TIMES_TARGET or rows * longest > ROWS_TIMES_SUFFIX):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    # Same number of batches, evened out: 23 rows as 8 + 8 + 7 rather than 11 + 11 + 1.
    size = -(-len(order) // max(len(batches), 1))
    return [order[i : i + size] for i in range(0, len(order), size)]


def _target_arrays(count: int, width: int, first_row: Sequence[int], target: Sequence[int]):
    """rows/target_ids/weights [B, width] for batch items whose target starts at ``first_row[b]``."""
    size = len(target)
    rows = np.zeros((count, width), np.int32)
    target_ids = np.zeros((count, width), np.int32)
    weights = np.zeros((count, width), np.float32)
    for b in range(count):
        rows[b, :size] = np.arange(size) + first_row[b]
        target_ids[b, :size] = target
        weights[b, :size] = 1.0
    return rows, target_ids, weights


def _run(batches, total, compute, progress, cancelled, lock) -> None:
    done = 0
    if progress is not None:  # the page knows the count before the first batch is done
        progress(0, total)
    for batch in batches:
        if cancelled is not None and cancelled():
            raise CancelledError("Deletion was cancelled.")
        with lock:
            compute(batch)
        done += len(batch)
        if progress is not None:
            progress(min(done, total), total)


def score_rows(sequences, first_rows, target, run_batch, progress, cancelled, lock) -> np.ndarray:
    """Target log-probability of each token sequence, in size-bounded batches (longest first).

    ``first_rows[i]`` is where sequence i's hidden state predicting the first target token
    sits; ``run_batch(indices, token_ids, (rows, target_ids, weights))`` runs one batch.
    """
    width = len(target)  # the graphs take any width: no padded rows through the vocabulary
    lengths = [len(sequence) for sequence in sequences]
    values = np.zeros(len(sequences), np.float64)

    def compute(batch: list[int]) -> None:
        token_ids = np.zeros((len(batch), max(lengths[i] for i in batch)), np.int32)
        for b, index in enumerate(batch):
            token_ids[b, : lengths[index]] = sequences[index]
        arrays = _target_arrays(len(batch), width, [first_rows[i] for i in batch], target)
        values[batch] = run_batch(batch, token_ids, arrays)

    order = sorted(range(len(sequences)), key=lambda i: -lengths[i])
    _run(_batches(order, lengths, width), len(sequences), compute, progress, cancelled, lock)
    return values


def _shared_prefix(forward, ids, target_start, target_end, rows, progress, cancelled, lock) -> np.ndarray:
    # Row (a, b) keeps ids[:a - 1] from the cache and runs ids[a - 1] + ids[b:target_end]:
    # the token just before the deletion is re-run so its hidden state can predict the next one.
    # Suffix position j + 1 holds ids[b + j], so target token t is predicted at t - b.
    prefix_lengths = [start - 1 for start, _ in rows]
    suffixes = [[ids[start - 1], *ids[end:target_end]] for start, end in rows]
    with lock:
        cache = forward.prefix_cache(ids[: max(prefix_lengths)])
    return score_rows(
        suffixes,
        [target_start - end for _, end in rows],
        ids[target_start:target_end],
        lambda batch, token_ids, arrays: forward.suffix_log_probs(
            cache, [prefix_lengths[i] for i in batch], token_ids, *arrays
        ),
        progress,
        cancelled,
        lock,
    )


def _full_sequences(forward, ids, target_start, target_end, rows, progress, cancelled, lock) -> np.ndarray:
    return score_rows(
        [ids[:start] + ids[end:] for start, end in rows],
        [target_start - (end - start) - 1 for start, end in rows],
        ids[target_start:target_end],
        lambda batch, token_ids, arrays: forward.batch_log_probs(token_ids, *arrays),
        progress,
        cancelled,
        lock,
    )


# ---- redundancy: two parts that each suffice ---------------------------------------------------
# A pair counts as redundant when deleting both moves log p by at least this much (nats) and at
# least twice as much as deleting each alone, added up: each alone scores near zero because the
# other still gives the answer.
REDUNDANT_NATS = 1.0


@dataclass(frozen=True)
class Redundancy:
    """Two segments (indices into `DeletionScores.segments`) whose deletion together matters."""

    pair: tuple[int, int]
    alone: tuple[float, float]  # each one's Deletion score (nats)
    together: float  # log p(target) − log p(target without both)

    @property
    def redundant(self) -> bool:
        alone = max(self.alone[0], 0.0) + max(self.alone[1], 0.0)
        return self.together >= REDUNDANT_NATS and self.together >= 2 * alone


def delete_pair(forward, ids, target_start, target_end, first, second, lock=None) -> float:
    """log p(target | prompt without two token spans) (``first`` before ``second``)."""
    (a_start, a_end), (b_start, b_end) = sorted([first, second])
    ids = [int(i) for i in ids[:target_end]]
    target = ids[target_start:target_end]
    lock = lock if lock is not None else contextlib.nullcontext()
    removed = (a_end - a_start) + (b_end - b_start)
    if forward.shares_prefixes:
        with lock:
            cache = forward.prefix_cache(ids[: a_start - 1])
        suffix = [ids[a_start - 1], *ids[a_end:b_start], *ids[b_end:target_end]]
        return float(
            score_rows(
                [suffix],
                [target_start - a_start - removed],
                target,
                lambda batch, token_ids, arrays: forward.suffix_log_probs(
                    cache, [a_start - 1], token_ids, *arrays
                ),
                None,
                None,
                lock,
            )[0]
        )
    sequence = ids[:a_start] + ids[a_end:b_start] + ids[b_end:target_end]
    return float(
        score_rows(
            [sequence],
            [target_start - removed - 1],
            target,
            lambda batch, token_ids, arrays: forward.batch_log_probs(token_ids, *arrays),
            None,
            None,
            lock,
        )[0]
    )


def redundancy(
    forward, ids, target_start, target_end, deletion: DeletionScores, lock=None
) -> Redundancy | None:
    """Delete the two strongest segments together (leaving out the one holding the row that
    predicts the target, which always matters): if that matters much more than each alone, they
    are two parts that each give the answer. None with fewer than two candidates."""
    candidates = [
        index for index, (start, end) in enumerate(deletion.segments) if not start <= target_start - 1 < end
    ]
    if len(candidates) < 2:
        return None
    first, second = sorted(candidates, key=lambda i: -float(deletion.scores[i]))[:2]
    without = delete_pair(
        forward, ids, target_start, target_end, deletion.segments[first], deletion.segments[second], lock
    )
    return Redundancy(
        pair=(first, second),
        alone=(float(deletion.scores[first]), float(deletion.scores[second])),
        together=deletion.log_prob - without,
    )
