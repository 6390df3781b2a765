"""Display-ready data for the UI (pure Python, no Streamlit): heatmap cells, top segments, readout."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from salience.attribution.methods import DELETION, get_method, segment_aggregation
from salience.core.text import excerpt
from salience.core.types import SalienceResult
from salience.prompts.describe import describe_segments, normalized_text, numbered
from salience.prompts.rollup import SlotScore, rollup, rollup_by_variable
from salience.prompts.segments import Segment, aggregate, make_segments, normalize
from salience.prompts.templates import RenderedPrompt


@dataclass(frozen=True)
class HeatmapView:
    """Segments of prompt+output with raw and normalised scores, ready to draw."""

    segments: list[Segment]
    scores: np.ndarray  # aggregated, per segment (zeros when there is no result)
    normalized: np.ndarray  # in [-1, 1]
    scale: float
    method: str
    signed: bool
    target_span: tuple[int, int] | None  # characters of the explained text

    def cells(self, prompt_length: int) -> list[dict]:
        """JSON cells for the heatmap component."""
        selected = self.target_span or (-1, -1)
        return [
            {
                "id": i,
                "text": seg.text,
                "start": seg.start,
                "end": seg.end,
                "output": seg.start >= prompt_length and seg.end > seg.start,
                "score": float(self.scores[i]),
                "value": float(self.normalized[i]),
                "selected": seg.start < selected[1] and seg.end > selected[0] and seg.start >= prompt_length,
            }
            for i, seg in enumerate(self.segments)
        ]


def heatmap_view(
    text: str,
    offsets: Sequence[tuple[int, int]],
    prompt_length: int,
    granularity: str,
    method: str,
    result: SalienceResult | None = None,
    rendered: RenderedPrompt | None = None,
    pattern: str | None = None,
    aggregation: str = "sum",
    shared_scale: float | None = None,
) -> HeatmapView:
    """Segment the text and colour it by ``result`` (or leave it blank when there is none)."""
    segments = make_segments(
        text,
        offsets,
        granularity,
        prompt_length=prompt_length,
        slots=rendered.slots if rendered else (),
        pattern=pattern,
    )
    spec = get_method(method)
    if result is None or method not in result.scores:
        zeros = np.zeros(len(segments))
        return HeatmapView(segments, zeros, zeros, 0.0, method, spec.signed, None)
    scores = aggregate(result.scores[method], segments, segment_aggregation(method, aggregation))
    normalized, scale = normalize(scores, shared_scale)
    start, end = result.target_token_span
    span = (result.offsets[start][0], result.offsets[end - 1][1])
    return HeatmapView(segments, scores, normalized, scale, method, spec.signed, span)


def top_segments(view: HeatmapView, limit: int = 10) -> list[dict]:
    """The prompt segments with the largest magnitude, strongest first."""
    rows = [
        {"segment": seg.text.strip(), "score": float(view.scores[i]), "start": seg.start}
        for i, seg in enumerate(view.segments)
        if not seg.in_target and seg.text.strip()
    ]
    rows.sort(key=lambda row: -abs(row["score"]))
    return rows[:limit]


def slot_table(result: SalienceResult, rendered: RenderedPrompt, method: str) -> list[SlotScore]:
    """Per-variable roll-up (repeated variables merged) for one method."""
    rows = rollup(rendered.slots, result.text, result.offsets, result.summable(method), result.prompt_length)
    return rollup_by_variable(rows)


class Legend(NamedTuple):
    """Plain words for the two ends of a method's colour scale, and the raw scale (for details)."""

    low: str
    high: str
    note: str
    signed: bool


def legend_words(method: str, scale: float, shared: bool = False) -> Legend:
    """The method's own words for the low and high ends; ``note`` gives the raw scale."""
    spec = get_method(method)
    units = " nats (change in log-probability)" if method == DELETION else ""
    note = (
        f"Strongest colour = ±{scale:.3g}{units}" if spec.signed else f"Strongest colour = {scale:.3g}{units}"
    )
    if scale <= 0:
        note = "No scores yet."
    if shared:
        note += " · one scale shared by all panes"
    return Legend(spec.low_words, spec.high_words, note, spec.signed)


def _slots(rendered: RenderedPrompt | None) -> tuple:
    return rendered.slots if rendered is not None else ()


def ranking(view: HeatmapView, result: SalienceResult) -> list[int]:
    """The prompt segments the page ranks, strongest |score| first (ties in prompt order).

    One ranking behind the reading, the top-parts chart, the agreement line and the what-if
    choices: every prompt segment with text (never ``<bos>``, whitespace or the output). A
    segment whose text the selection repeats stays in, where its score puts it: the model
    copied it, so it is a real cause. Only the selection itself (in the output) is left out.
    """
    candidates = [
        index
        for index, seg in enumerate(view.segments)
        if not seg.in_target
        and seg.start < result.prompt_length
        and seg.token_start >= 1
        and seg.token_end > seg.token_start
        and seg.text.strip()
    ]
    scores = np.asarray(view.scores, dtype=np.float64)
    return sorted(candidates, key=lambda i: (-abs(float(scores[i])), i))


def copied(segment_text: str, selected_text: str) -> bool:
    """True when the selection repeats this prompt text (the model copied it): the same text,
    whitespace aside, or a text of at least three words that the selection contains whole."""
    segment, selected = normalized_text(segment_text), normalized_text(selected_text)
    if not segment or not selected:
        return False
    return segment == selected or (len(segment.split()) >= 3 and segment in selected)


def chart_rows(
    view: HeatmapView, result: SalienceResult, rendered: RenderedPrompt | None = None, limit: int = 10
) -> list[dict]:
    """One row per prompt segment *position* (copies are separate rows), in the page's `ranking`.

    Each row has a unique ``label`` (its text and where it is), its ``score``, and ``meaning``:
    the legend's words for its sign. ``same_as_selection`` marks text the selection copies.
    """
    legend = legend_words(view.method, view.scale)
    places = describe_segments(view.segments, result.text, result.prompt_length, _slots(rendered))
    rows = []
    for index in ranking(view, result)[:limit]:
        seg = view.segments[index]
        score = float(view.scores[index])
        where = places[index]
        label = f"“{excerpt(seg.text, 40)}”" + (f" — {where}" if where else "")
        rows.append(
            {
                "label": label,
                "segment": seg.text.strip(),
                "where": where,
                "score": score,
                "meaning": (legend.high if score >= 0 else legend.low) if legend.signed else legend.high,
                "same_as_selection": copied(seg.text, result.target_text),
                "start": seg.start,
            }
        )
    seen: dict[str, int] = {}
    for row in rows:  # the chart's axis merges equal labels: keep every position apart
        seen[row["label"]] = seen.get(row["label"], 0) + 1
        if seen[row["label"]] > 1:
            row["label"] += f" ({seen[row['label']]})"
    return rows


def _target_phrase(result: SalienceResult) -> str:
    """'“Recommendation: Avoid.”', with which copy when the output repeats it."""
    target = result.target_text
    phrase = f"“{excerpt(target)}”"
    start, _ = result.target_token_span
    begin = result.offsets[start][0] if start < len(result.offsets) else result.prompt_length
    output = result.text[result.prompt_length :]
    needle = target.strip()
    if not needle or output.count(needle) < 2:
        return phrase
    positions, found = [], output.find(needle)
    while found >= 0:
        positions.append(result.prompt_length + found)
        found = output.find(needle, found + 1)
    first_char = begin + len(result.text[begin:]) - len(result.text[begin:].lstrip())
    number = 1 + sum(1 for p in positions if p < first_char)
    return f"{phrase} (the {numbered(number)} of {len(positions)} in the output)"


def top_segment(view: HeatmapView, result: SalienceResult) -> int | None:
    """The segment the reading names: the first of the page's `ranking` with a score."""
    ranked = ranking(view, result)
    if not ranked or view.scores[ranked[0]] == 0:
        return None
    return ranked[0]


def readout(view: HeatmapView, result: SalienceResult, rendered: RenderedPrompt | None = None) -> str:
    """One plain sentence naming the prompt segment that mattered most for the selected text.

    The segment is the first of the page's `ranking`. A prompt line the selection repeats is
    named as what the output copied ("copied from the first example's Recommendation line"),
    and a repeated sentence is named by where it is.
    """
    best = top_segment(view, result)
    if best is None:
        return "Nothing in the prompt scored for this selection."
    places = describe_segments(view.segments, result.text, result.prompt_length, _slots(rendered))
    score = float(view.scores[best])
    text, place = view.segments[best].text, places[best]
    selected = _target_phrase(result)
    spec = get_method(view.method)
    if copied(text, result.target_text):
        source = place or f"“{excerpt(text)}” in the prompt"
        if spec.directional:
            pushed = "supported" if score > 0 else "worked against"
            likely = "less" if score > 0 else "more"
            sentence = (
                f"{selected} is copied from {source}; that text {pushed} it most: without it the "
                f"model is {likely} likely to write it."
            )
        elif spec.signed:
            sign = "positive" if score > 0 else "negative"
            sentence = (
                f"{selected} is copied from {source}; that text has the strongest score for it ({sign}; "
                "this method's sign does not say whether the text helped or hurt)."
            )
        else:
            sentence = f"{selected} is copied from {source}; it is most sensitive to that text."
        return f"By {spec.label}, {sentence}"
    cause = f"“{excerpt(text)}”" + (f" ({place})" if place else "")
    if spec.directional:
        if score > 0:
            sentence = f"{cause} supported {selected} most: without it the model is less likely to write it."
        else:
            sentence = (
                f"{cause} worked against {selected} most: without it the model is more likely to write it."
            )
    elif spec.signed:
        sign = "positive" if score > 0 else "negative"
        sentence = (
            f"{cause} has the strongest score for {selected} ({sign}; this method's sign does not say "
            "whether the text helped or hurt)."
        )
    else:
        sentence = f"{selected} is most sensitive to {cause}."
    return f"By {spec.label}, {sentence}"


def snap_to_segments(segments: Sequence[Segment], start: int, end: int) -> tuple[int, int] | None:
    """Widen a character span to whole output segments; None if it touches no output segment."""
    chosen = [s for s in segments if s.in_target and s.start < end and s.end > start and s.text.strip()]
    if not chosen:
        return None
    return chosen[0].start, chosen[-1].end


def find_selection(
    segments: Sequence[Segment],
    text: str,
    prompt_length: int,
    relative: tuple[int, int],
    selected_text: str = "",
) -> tuple[int, int] | None:
    """Re-find a selection made on an earlier output (or at another granularity).

    The result always covers all of the selected text, widened to whole segments: the
    same characters when the output is unchanged (a granularity switch never shrinks a
    selection), else the same text elsewhere in the output (nearest copy), else the part
    that starts with its leading word (so "Recommendation: …" stays the Recommendation line
    when the output changed), else the same position relative to the output start.
    """
    output = [s for s in segments if s.in_target and s.text.strip()]
    if not output:
        return None
    start, end = prompt_length + relative[0], prompt_length + relative[1]
    if selected_text.strip():
        if text[start:end] == selected_text:
            return snap_to_segments(segments, start, end)
        copies, found = [], text.find(selected_text, prompt_length)
        while found >= 0:
            copies.append(found)
            found = text.find(selected_text, found + 1)
        if copies:
            nearest = min(copies, key=lambda p: abs(p - start))
            return snap_to_segments(segments, nearest, nearest + len(selected_text))
        lead = selected_text.split()[0]
        found = text.find(lead, prompt_length)
        if found >= 0:
            line_end = text.find("\n", found)
            limit = len(text) if line_end < 0 else line_end
            stop = min(found + len(selected_text.strip()), limit)
            return snap_to_segments(segments, found, max(stop, found + len(lead)))
    start = min(start, output[-1].start)
    end = min(end, output[-1].end)
    return snap_to_segments(segments, start, max(end, start + 1))
