"""Per-variable roll-up: how much each template slot drove the target."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from salience.prompts.templates import Slot


@dataclass(frozen=True)
class SlotScore:
    """A template slot's total score, share of all influence and mean per token.

    ``share`` is the slot's share of the summed magnitudes (|total| / Σ|total|), so
    shares add up to 1 even for signed methods; ``total`` keeps the sign.
    """

    name: str
    kind: str  # "variable" or "fixed"
    start: int
    end: int
    tokens: int
    total: float
    share: float
    mean: float
    text: str
    label: str = ""  # what a reviewer reads: "menu item", "“Analyze a menu item…”"

    def to_json(self) -> dict:
        return asdict(self)


def rollup(
    slots: Sequence[Slot],
    text: str,
    offsets: Sequence[tuple[int, int]],
    scores: np.ndarray,
    prompt_length: int,
) -> list[SlotScore]:
    """Sum token scores per slot of a rendered prompt (tokens join the slot of their anchor).

    Tokens with an empty span (``<bos>``) and tokens of the target are left out.
    """
    from salience.prompts.segments import token_anchor

    spans = [(i, slot) for i, slot in enumerate(slots) if slot.end > slot.start]
    starts = np.asarray([slot.start for _, slot in spans], dtype=np.int64)
    totals = np.zeros(len(slots))
    counts = np.zeros(len(slots), dtype=np.int64)
    for index, span in enumerate(offsets):
        if span[0] == span[1]:
            continue
        anchor = token_anchor(text, span)
        if anchor >= prompt_length or not spans:
            continue
        position = int(np.searchsorted(starts, anchor, side="right")) - 1
        slot_index = spans[max(position, 0)][0]
        totals[slot_index] += float(scores[index])
        counts[slot_index] += 1
    magnitude = float(np.abs(totals).sum())
    return [
        SlotScore(
            name=slot.name,
            kind=slot.kind,
            start=slot.start,
            end=slot.end,
            tokens=int(counts[i]),
            total=float(totals[i]),
            share=float(abs(totals[i]) / magnitude) if magnitude > 0 else 0.0,
            mean=float(totals[i] / counts[i]) if counts[i] else 0.0,
            text=slot.text,
            label=slot.title,
        )
        for i, slot in enumerate(slots)
    ]


def rollup_by_variable(rows: Sequence[SlotScore]) -> list[SlotScore]:
    """Merge repeated occurrences of the same variable into one row (fixed blocks stay apart)."""
    merged: dict[str, SlotScore] = {}
    order: list[str] = []
    for index, row in enumerate(rows):
        key = row.name if row.kind == "variable" else f"{row.name}@{index}"
        if key not in merged:
            merged[key] = row
            order.append(key)
            continue
        old = merged[key]
        tokens = old.tokens + row.tokens
        total = old.total + row.total
        merged[key] = SlotScore(
            old.name,
            old.kind,
            old.start,
            row.end,
            tokens,
            total,
            old.share + row.share,
            total / tokens if tokens else 0.0,
            old.text,
            old.label,
        )
    return [merged[key] for key in order]
