"""Do a gradient method and Deletion agree? And what is the prompt without one segment?

Pure functions for the page's agreement line and its "What if I delete this?"
counterfactual (no Streamlit, no model):

- `deletion_targets` picks the prompt segments Deletion removes (text before the
  explained output, never ``<bos>`` or whitespace-only segments);
- `compare_top` compares the top-k segments of two score arrays **by position**
  (the k largest magnitudes of each; the same text at two places counts as two);
- `agreement_line` turns that into one sentence ("Deletion confirms the top 3
  sentences by Grad L2." / "Methods disagree on the top sentence: …");
- `without_segment` cuts one segment's characters out of the prompt text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from salience.core.errors import InputError
from salience.prompts.segments import Segment

TOP_K = 3
# Deletion scores smaller than this (nats) count as "removing it changes nothing".
NEGLIGIBLE_NATS = 1e-4
# Granularities whose segments Deletion always follows; words and tokens only when few enough.
SEGMENT_GRANULARITIES = ("sentences", "lines", "paragraphs", "slots", "regex")
UNITS = {
    "tokens": ("token", "tokens"),
    "words": ("word", "words"),
    "sentences": ("sentence", "sentences"),
    "lines": ("line", "lines"),
    "paragraphs": ("paragraph", "paragraphs"),
    "slots": ("template part", "template parts"),
    "regex": ("segment", "segments"),
}


def unit_names(granularity: str) -> tuple[str, str]:
    """('sentence', 'sentences') for a granularity; ('segment', 'segments') when unknown."""
    return UNITS.get(granularity, ("segment", "segments"))


def deletion_targets(segments: Sequence[Segment], prompt_length: int) -> list[int]:
    """Indices of the prompt segments Deletion removes one at a time.

    Only prompt text counts (output before the explained part stays), ``<bos>`` is never
    removed, and whitespace-only segments are skipped: removing them says nothing.
    """
    return [
        index
        for index, seg in enumerate(segments)
        if not seg.in_target
        and seg.start < prompt_length
        and seg.token_start >= 1
        and seg.token_end > seg.token_start
        and seg.text.strip()
    ]


def token_spans(segments: Sequence[Segment], indices: Sequence[int]) -> list[tuple[int, int]]:
    """Token spans of the chosen segments, in the form ``LanguageModel.salience(segments=...)`` takes."""
    return [(segments[i].token_start, segments[i].token_end) for i in indices]


def ranked(scores: Sequence[float], candidates: Sequence[int]) -> list[int]:
    """Candidates by decreasing |score|; ties keep prompt order."""
    values = np.asarray(scores, dtype=np.float64)
    return sorted(candidates, key=lambda i: (-abs(float(values[i])), i))


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman rank correlation (average ranks for ties); None when either side is constant."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None

    def ranks(values: np.ndarray) -> np.ndarray:
        order = np.argsort(values, kind="stable")
        result = np.empty(values.size)
        result[order] = np.arange(values.size, dtype=np.float64)
        for value in np.unique(values):  # average ranks of ties
            tied = values == value
            result[tied] = result[tied].mean()
        return result

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


@dataclass(frozen=True)
class Agreement:
    """The top-k segments (indices into the view's segments) of a gradient method and of Deletion."""

    k: int
    gradient_top: tuple[int, ...]  # ranked by |score|, strongest first
    deletion_top: tuple[int, ...]
    deletion_negligible: bool  # no deletion moves log p by more than NEGLIGIBLE_NATS
    correlation: float | None  # Spearman over every candidate segment, signed scores

    @property
    def agree(self) -> bool:
        """Same top-k set (order inside it may differ)."""
        return set(self.gradient_top) == set(self.deletion_top)

    @property
    def top_match(self) -> bool:
        return self.gradient_top[:1] == self.deletion_top[:1]

    @property
    def shared(self) -> tuple[int, ...]:
        return tuple(i for i in self.gradient_top if i in self.deletion_top)

    @property
    def only_gradient(self) -> tuple[int, ...]:
        return tuple(i for i in self.gradient_top if i not in self.deletion_top)

    @property
    def only_deletion(self) -> tuple[int, ...]:
        return tuple(i for i in self.deletion_top if i not in self.gradient_top)


def compare_top(
    gradient_scores: Sequence[float],
    deletion_scores: Sequence[float],
    candidates: Sequence[int],
    k: int = TOP_K,
) -> Agreement | None:
    """Compare the k strongest candidates of each method, by position; None with fewer than 2.

    k is at most one less than the number of candidates, so agreeing is never automatic.
    """
    candidates = list(dict.fromkeys(int(i) for i in candidates))
    if len(candidates) < 2:
        return None
    k = max(1, min(k, len(candidates) - 1))
    deletion = np.asarray(deletion_scores, dtype=np.float64)
    gradient = np.asarray(gradient_scores, dtype=np.float64)
    negligible = bool(np.all(np.abs(deletion[candidates]) <= NEGLIGIBLE_NATS))
    return Agreement(
        k=k,
        gradient_top=tuple(ranked(gradient, candidates)[:k]),
        deletion_top=tuple(ranked(deletion, candidates)[:k]),
        deletion_negligible=negligible,
        correlation=spearman(gradient[candidates], deletion[candidates]),
    )


def _quoted(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return "“" + (text if len(text) <= limit else text[: limit - 1].rstrip() + "…") + "”"


def _listed(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def agreement_line(
    agreement: Agreement,
    texts: Mapping[int, str],
    granularity: str,
    method_label: str,
    places: Mapping[int, str] | None = None,
) -> str:
    """One sentence saying whether Deletion confirms the gradient method's top segments.

    ``texts`` maps segment indices to their text (quoted, shortened); ``places`` to where
    they are, added for texts that occur more than once so copies can be told apart.
    Ranking is by size (|score|), so the sentence never says which way a segment pushed.
    """
    one, many = unit_names(granularity)
    counts: dict[str, int] = {}
    for text in texts.values():
        counts[_quoted(text)] = counts.get(_quoted(text), 0) + 1

    def name(index: int) -> str:
        quoted = _quoted(texts[index])
        place = (places or {}).get(index)
        return f"{quoted} ({place})" if place and counts[quoted] > 1 else quoted

    k = agreement.k
    top = f"top {one}" if k == 1 else f"top {k} {many}"
    if agreement.deletion_negligible:
        return (
            f"Deletion cannot confirm {method_label}: removing any single {one} changes the output's "
            "probability by almost nothing (try a coarser granularity)."
        )
    if agreement.agree:
        return f"Deletion confirms the {top} by {method_label}."
    gradient_first = name(agreement.gradient_top[0])
    deletion_first = name(agreement.deletion_top[0])
    if agreement.top_match:
        gradient_only = _listed([name(i) for i in agreement.only_gradient])
        deletion_only = _listed([name(i) for i in agreement.only_deletion])
        return (
            f"Deletion confirms the top {one} by {method_label}, {gradient_first}; for the rest of the "
            f"top {k} the methods disagree: {method_label} ranks {gradient_only} there, Deletion {deletion_only}."
        )
    shared = len(agreement.shared)
    tail = f" They share {shared} of their top {k}." if k > 1 else ""
    return (
        f"Methods disagree on the top {one}: {method_label} ranks {gradient_first} first, "
        f"Deletion ranks {deletion_first} first.{tail}"
    )


def without_segment(prompt: str, start: int, end: int) -> str:
    """The prompt with characters ``[start, end)`` removed (the segment's trailing space goes with it).

    Refuses a span outside the prompt, a whitespace-only span, and a span whose removal
    leaves nothing but whitespace.
    """
    if not 0 <= start < len(prompt) or end <= start:
        raise InputError("Only a part of the prompt can be deleted; pick a prompt segment.")
    end = min(end, len(prompt))
    if not prompt[start:end].strip():
        raise InputError("That segment is only whitespace: deleting it would change nothing.")
    rest = prompt[:start] + prompt[end:]
    if not rest.strip():
        raise InputError("That segment is the whole prompt: without it there is nothing to generate from.")
    return rest


def times_less_likely(nats: float) -> str:
    """'about 40 times less likely' for a drop in log-probability, in words (no units)."""
    factor = math.exp(min(nats, 700.0))
    if factor >= 1000:
        return "more than a thousand times less likely"
    if factor < 1.5:
        return "hardly less likely"
    if factor >= 10:
        return f"about {round(factor, -1 if factor >= 100 else 0):.0f} times less likely"
    return f"about {factor:.1f} times less likely".replace(".0 times", " times")


def redundancy_sentence(first: str, second: str, alone: float, together: float) -> str:
    """The reading of two parts that each give the answer (`salience.attribution.occlusion.Redundancy`):
    ``alone`` is the larger of their single deletions, ``together`` both at once (nats)."""
    one = times_less_likely(max(alone, 0.0))
    one = "leaves the selection " + one if one.startswith("hardly") else "makes the selection at most " + one
    return (
        f"{first} and {second} back each other up: removing just one {one}, removing both makes it "
        f"{times_less_likely(together)}."
    )
