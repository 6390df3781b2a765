"""Display-ready data for the UI (pure Python, no Streamlit): heatmap cells, top segments, readout."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from salience.methods import get_method
from salience.rollup import SlotScore, rollup, rollup_by_variable
from salience.segments import Segment, aggregate, make_segments, normalize
from salience.templates import RenderedPrompt
from salience.types import SalienceResult


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
    scores = aggregate(result.scores[method], segments, aggregation)
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
    rows = rollup(rendered.slots, result.text, result.offsets, result.scores[method], result.prompt_length)
    return rollup_by_variable(rows)


def _excerpt(text: str, limit: int = 48) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def readout(view: HeatmapView, result: SalienceResult, rendered: RenderedPrompt | None = None) -> str:
    """One plain-language sentence naming what drove the selected text most."""
    top = top_segments(view, limit=1)
    if not top:
        return "Nothing in the prompt scored for this selection."
    best = top[0]
    where = ""
    if rendered is not None:
        for slot in rendered.slots:
            if slot.start <= best["start"] < slot.end:
                where = f" (the '{slot.name}' value)" if slot.kind == "variable" else ""
                break
    target = _excerpt(result.target_text)
    label = get_method(view.method).label
    if view.signed:
        direction = "toward" if best["score"] > 0 else "away from"
        return (
            f"By {label}, '{_excerpt(best['segment'])}'{where} pushed the model most strongly "
            f"{direction} '{target}'."
        )
    return f"Most influence on '{target}' came from '{_excerpt(best['segment'])}'{where} ({label})."


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
    """Re-find a selection made on an earlier output.

    First by its leading word (so "Recommendation: …" stays the Recommendation line
    when the output before it grows or shrinks), else by the same position relative
    to the output start. Returns a character span snapped to whole output segments.
    """
    output = [s for s in segments if s.in_target and s.text.strip()]
    if not output:
        return None
    words = selected_text.split()
    if words:
        found = text.find(words[0], prompt_length)
        if found >= 0:
            return snap_to_segments(segments, found, found + len(words[0]))
    start = min(prompt_length + relative[0], output[-1].start)
    end = min(prompt_length + relative[1], output[-1].end)
    return snap_to_segments(segments, start, max(end, start + 1))


def legend_words(signed: bool, scale: float, shared: bool = False) -> tuple[str, str, str]:
    """Plain words for the two ends of the colour scale, and a note on the scale."""
    note = f"scale: ±{scale:.3g}" if signed else f"scale: 0 – {scale:.3g}"
    if shared:
        note += " (shared by all panes)"
    if signed:
        return "pushed away from the selected text", "pushed toward the selected text", note
    return "little influence", "strong influence on the selected text", note
