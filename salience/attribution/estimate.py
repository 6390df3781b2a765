"""Deletion estimated from one backward pass, with the segments it depends on checked exactly.

1. Every segment gets a first-order estimate of Deletion: the derivative of log p(target)
   with respect to every layer's attention to its tokens, from the queries outside it
   (`GemmaForward.attention_mask_gradients`). On the copy-from-context suite its top
   segment is Deletion's in every case.
2. A few segments are then deleted for real, in the same request, reusing the keys and values
   the backward pass computed as the shared prefix (`GemmaForward.suffix_log_probs`) and its
   log p(target) as the baseline: first the segment holding the row that predicts the target
   (the cue, e.g. ``Answer:``; masking attention cannot remove the row itself, so its estimate
   is structurally wrong), then the highest estimates, while their cost stays within a budget
   (half the backward pass, `CHECK_BUDGET`; a short prompt `CHECK_FLOOR` tokens).
3. The other estimates are put on the same scale (nats) by the ratio of exact to estimated
   on the checked non-cue segments (the first-order estimate underestimates large effects).

See docs/FAITHFULNESS.md for what this agrees with and how fast it is.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from salience.attribution.occlusion import deletable_segments, score_rows

DEFAULT_CONFIRMED = 3  # the highest estimates considered for an exact check, in order
# Exact checks may cost this share of the backward pass they follow (`pass_cost`), so a click on
# a long prompt costs at most ~1.5 gradient passes: the cue (a short suffix) nearly always fits,
# the top estimate when what follows it is short enough, then the next ones. A short prompt may
# spend up to CHECK_FLOOR tokens through the model (about a gradient pass over 100 tokens): its
# click is quick anyway, and a long target (a headline for a short prompt) would otherwise leave
# room for one check only. Measured in docs/FAITHFULNESS.md.
CHECK_BUDGET = 0.5
CHECK_FLOOR = 256


@dataclass(frozen=True)
class DeletionEstimate:
    """Per-segment Deletion scores (nats): exact where ``confirmed``, else a scaled estimate."""

    segments: tuple[tuple[int, int], ...]
    scores: np.ndarray  # [segments]
    estimate: np.ndarray  # [segments] first-order estimate, unscaled
    confirmed: tuple[int, ...]  # indices deleted for real
    scale: float  # nats per unit of estimate, fitted on the confirmed non-cue segments
    per_token: np.ndarray  # [n] d log p / d log m_j (token-level, sums to nothing in particular)
    log_prob: float
    seconds: float

    def token_scores(self, length: int) -> np.ndarray:
        """[length] token scores whose sum over each segment is its score: the segment's score
        spread over its tokens in proportion to their own estimates (evenly when they cancel)."""
        values = np.zeros(length, np.float32)
        for (start, end), score in zip(self.segments, self.scores):
            part = self.per_token[start:end].astype(np.float64)
            total = part.sum()
            if abs(total) > 1e-6 * max(np.abs(part).sum(), 1e-12) and np.all(part * total >= 0):
                values[start:end] = part / total * score
            else:
                values[start:end] = score / (end - start)
        return values


def cue_index(spans: Sequence[tuple[int, int]], target_start: int) -> int | None:
    """The segment holding the token just before the target (its row predicts the target)."""
    for index, (start, end) in enumerate(spans):
        if start <= target_start - 1 < end:
            return index
    return None


def pass_cost(forward, length: int, target: int) -> float:
    """A backward pass over ``length`` tokens, in tokens through every layer: a forward and a
    backward over the sequence and two passes of the ``target`` rows through the vocabulary."""
    return 2 * length + 2 * forward.vocabulary_cost * target


def check_cost(forward, target: int, suffix: int) -> float:
    """Deleting a span for real, in tokens through every layer: the ``suffix`` after it runs through
    the layers and the ``target`` rows through the vocabulary."""
    return suffix + forward.vocabulary_cost * target


def exact_deletion(forward, ids, target_start, target_end, spans, cache=None, baseline=None) -> np.ndarray:
    """log p(target) − log p(target without the span), for a few spans, reusing ``cache`` (every
    layer's keys and values of ``ids``) as the shared prefix where the family allows it.

    ``baseline`` (log p(target) with the whole prompt, e.g. from the pass that made ``cache``)
    saves the row that deletes nothing: one more pass over the target through the vocabulary."""
    if baseline is not None:
        values = _log_probs_without(forward, ids, target_start, target_end, list(spans), cache)
        return (baseline - values).astype(np.float32)
    rows = [(target_start, target_start), *spans]
    values = _log_probs_without(forward, ids, target_start, target_end, rows, cache)
    return (values[0] - values[1:]).astype(np.float32)


def _log_probs_without(forward, ids, target_start, target_end, rows, cache) -> np.ndarray:
    """log p(target | ids without span) for each span in ``rows`` (an empty span deletes nothing)."""
    target = ids[target_start:target_end]
    if forward.shares_prefixes and cache is not None:
        # Rows of equal suffix length run together (the no-deletion row and the cue's are both
        # one token plus the target); a long suffix runs alone rather than padding the short ones.
        prefix_lengths = [start - 1 for start, _ in rows]
        suffixes = [[ids[start - 1], *ids[end:target_end]] for start, end in rows]
        values = np.zeros(len(rows), np.float64)
        groups: dict[int, list[int]] = {}
        for index, suffix in enumerate(suffixes):
            groups.setdefault(len(suffix), []).append(index)
        for group in groups.values():
            values[group] = score_rows(
                [suffixes[i] for i in group],
                [target_start - rows[i][1] for i in group],
                target,
                lambda batch, token_ids, arrays, group=group: forward.suffix_log_probs(
                    cache, [prefix_lengths[group[i]] for i in batch], token_ids, *arrays
                ),
                None,
                None,
                contextlib.nullcontext(),
            )
    else:
        values = score_rows(
            [ids[:start] + ids[end:target_end] for start, end in rows],
            [target_start - (end - start) - 1 for start, end in rows],
            target,
            lambda batch, token_ids, arrays: forward.batch_log_probs(token_ids, *arrays),
            None,
            None,
            contextlib.nullcontext(),
        )
    return values


def deletion_estimate(
    forward,
    ids: Sequence[int],
    target_start: int,
    target_end: int,
    segments: Sequence[tuple[int, int]],
    confirmed: int = DEFAULT_CONFIRMED,
    width: int = 0,
    budget: float = CHECK_BUDGET,
) -> DeletionEstimate:
    """Estimate Deletion for every segment from one backward pass; delete the cue segment and then
    the highest of the first ``confirmed`` estimates for real, while the checks' cost stays within
    ``budget`` (a share of the backward pass, or CHECK_FLOOR tokens). See the module docstring."""
    began = time.perf_counter()
    ids = [int(i) for i in ids[:target_end]]
    spans = deletable_segments(segments, target_start)
    gradients = forward.attention_mask_gradients(ids, target_start, target_end, width, spans)
    estimate = np.asarray(gradients.per_segment, np.float64)
    cue = cue_index(spans, target_start)
    order = [int(i) for i in np.argsort(-estimate, kind="stable") if i != cue]
    target = target_end - target_start
    allowed = max(budget * pass_cost(forward, target_end, target), CHECK_FLOOR)
    checked, spent = [], 0.0
    for index in ([cue] if cue is not None else []) + order[:confirmed]:
        cost = check_cost(forward, target, 1 + target_end - spans[index][1])
        if spent + cost <= allowed:
            checked.append(index)
            spent += cost
    exact = (
        exact_deletion(
            forward,
            ids,
            target_start,
            target_end,
            [spans[i] for i in checked],
            gradients.cache,
            baseline=gradients.log_prob,
        )
        if checked
        else np.zeros(0, np.float32)
    )
    fitted = [(float(e), float(estimate[i])) for i, e in zip(checked, exact) if i != cue]
    numerator = sum(e * s for e, s in fitted)
    denominator = sum(s * s for _, s in fitted)
    scale = numerator / denominator if denominator > 0 and numerator > 0 else 1.0
    scores = estimate * scale
    for index, value in zip(checked, exact):
        scores[index] = value
    return DeletionEstimate(
        segments=tuple(spans),
        scores=scores.astype(np.float32),
        estimate=estimate.astype(np.float32),
        confirmed=tuple(checked),
        scale=float(scale),
        per_token=gradients.per_token,
        log_prob=gradients.log_prob,
        seconds=time.perf_counter() - began,
    )
