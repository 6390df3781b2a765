"""Comparing prompt variants: one target for all, output diffs, salience diffs by slot.

Variants may differ in length and wording, so nothing here aligns by token index:
template parts are matched by variable name and by fixed text, and fixed parts
with the same text are matched sentence by sentence.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import regex

from salience.core.errors import InputError
from salience.core.text import excerpt
from salience.core.types import SalienceResult
from salience.prompts.describe import Locator
from salience.prompts.rollup import rollup
from salience.prompts.segments import sentence_spans, token_anchor
from salience.prompts.templates import RenderedPrompt
from salience.prompts.variant import Variant as Variant  # re-exported: the variants compared here

MAX_VARIANTS = 4
TARGET_MODES = ("anchor", "reference", "output")


@dataclass(frozen=True)
class TargetChoice:
    """What every variant is explained against.

    ``anchor``: the part of each output that starts with ``text`` (to the end of its line),
    e.g. the "Recommendation" line; ``reference``: ``text`` itself after every prompt;
    ``output``: each variant's whole output.
    """

    mode: str = "anchor"
    text: str = ""

    def describe(self) -> str:
        if self.mode == "reference":
            return f"the reference text “{excerpt(self.text)}”"
        if self.mode == "anchor":
            return f"the output part starting “{excerpt(self.text)}”"
        return "each variant's whole output"


@dataclass(frozen=True)
class ResolvedTarget:
    """The text placed after the prompt, and the explained character span of prompt+target."""

    target: str
    span: tuple[int, int] | None  # in prompt + target; None = the whole target
    explained: str
    note: str = ""  # said to the user when the choice could not be met exactly


def resolve_target(choice: TargetChoice, prompt: str, output: str | None) -> ResolvedTarget | None:
    """Where to point the salience for one variant; None when there is nothing to explain."""
    if choice.mode not in TARGET_MODES:
        raise InputError(f"Unknown target mode '{choice.mode}'; choose one of: {', '.join(TARGET_MODES)}.")
    if choice.mode == "reference":
        if not choice.text:
            return None
        return ResolvedTarget(choice.text, None, choice.text)
    if not output or not output.strip():
        return None
    if choice.mode == "output" or not choice.text.strip():
        return ResolvedTarget(output, None, output)
    anchor = choice.text.strip()
    found = output.find(anchor)
    if found < 0:
        found = output.lower().find(anchor.lower())
    if found < 0:
        return ResolvedTarget(
            output, None, output, f"“{excerpt(anchor)}” is not in this output; explaining all of it."
        )
    line_end = output.find("\n", found)
    end = len(output) if line_end < 0 else line_end
    end = len(output[found:end].rstrip()) + found
    start = len(prompt) + found
    return ResolvedTarget(output, (start, len(prompt) + end), output[found:end])


def shared_scale(scales: Sequence[float]) -> float:
    """One colour scale for every pane: the largest of their own scales."""
    finite = [s for s in scales if np.isfinite(s) and s > 0]
    return max(finite) if finite else 0.0


@dataclass(frozen=True)
class DiffOp:
    op: str  # "equal", "insert", "delete"
    text: str


@dataclass(frozen=True)
class OutputDiff:
    ops: tuple[DiffOp, ...]
    added: int  # words
    removed: int
    summary: str


_WORDS = regex.compile(r"\S+\s*|\s+")


def output_diff(a: str, b: str, name_a: str = "A", name_b: str = "B") -> OutputDiff:
    """Word-level diff of two outputs, with a one-line summary."""
    words_a, words_b = _WORDS.findall(a or ""), _WORDS.findall(b or "")
    if not words_a and not words_b:
        return OutputDiff((), 0, 0, "Both outputs are empty: there is nothing to compare.")
    if a == b:
        return OutputDiff((DiffOp("equal", a),), 0, 0, f"The outputs of {name_a} and {name_b} are identical.")
    ops: list[DiffOp] = []
    added = removed = 0
    keys_a, keys_b = [w.strip() or " " for w in words_a], [w.strip() or " " for w in words_b]
    matcher = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            ops.append(DiffOp("equal", "".join(words_b[j1:j2])))
            continue
        if i2 > i1:
            ops.append(DiffOp("delete", "".join(words_a[i1:i2])))
            removed += sum(1 for w in words_a[i1:i2] if w.strip())
        if j2 > j1:
            ops.append(DiffOp("insert", "".join(words_b[j1:j2])))
            added += sum(1 for w in words_b[j1:j2] if w.strip())
    if not words_a:
        summary = f"{name_a} wrote nothing; {name_b} wrote {added} words."
    elif not words_b:
        summary = f"{name_b} wrote nothing; {name_a} wrote {removed} words."
    elif not added and not removed:
        summary = f"The outputs of {name_a} and {name_b} differ only in spacing."
    else:
        summary = f"{name_b} adds {added} and removes {removed} words compared with {name_a}."
    return OutputDiff(tuple(ops), added, removed, summary)


@dataclass(frozen=True)
class PartDelta:
    """How much one template part drove the target in A and in B."""

    part: str
    kind: str  # "variable", "fixed" or "sentence"
    status: str  # "same text", "changed", "only in A", "only in B"
    text_a: str | None
    text_b: str | None
    score_a: float | None
    score_b: float | None
    label: str = ""  # for reviewers: its own short text and where it sits ("… — the first example's …")

    @property
    def title(self) -> str:
        """The reviewer's label, or the stable ``part`` key when there is none."""
        return self.label or self.part

    @property
    def text_changed(self) -> bool:
        return self.status != "same text"

    @property
    def delta(self) -> float | None:
        if self.score_a is None or self.score_b is None:
            return None
        return self.score_b - self.score_a

    def to_json(self) -> dict:
        return {
            "part": self.part,
            "kind": self.kind,
            "status": self.status,
            "text_a": self.text_a,
            "text_b": self.text_b,
            "score_a": self.score_a,
            "score_b": self.score_b,
            "delta": self.delta,
            "label": self.title,
        }


# A change in how much the answer leans on a part smaller than this share of the largest score
# on either side reads "about the same".
SAME_PULL = 0.05


def movement(row: PartDelta, largest: float) -> str:
    """What happened to a part between A and B, in words: "text changed; the answer leans on it
    less in B", "same text; the answer leans on it more in B", "only in B" …

    "Leans on" compares the size of the scores (|score|), never their sign."""
    if row.score_a is None or row.score_b is None:
        return f"{row.status}"
    lead = "same text" if row.status == "same text" else "text changed"
    difference = abs(row.score_b) - abs(row.score_a)
    if largest <= 0 or abs(difference) < SAME_PULL * largest:
        return f"{lead}; the answer leans on it about as much in both"
    return f"{lead}; the answer leans on it {'more' if difference > 0 else 'less'} in B"


def readable_order(rows: Sequence[PartDelta]) -> list[PartDelta]:
    """Parts whose text changed (or exist on one side only) first, then the rest; within each,
    the biggest change in how much the answer leans on the part first (template order on ties)."""

    def moved(row: PartDelta) -> float:
        if row.score_a is None or row.score_b is None:
            return abs(row.score_a or 0.0) + abs(row.score_b or 0.0)
        return abs(abs(row.score_b) - abs(row.score_a))

    order = sorted(range(len(rows)), key=lambda i: (not rows[i].text_changed, -moved(rows[i]), i))
    return [rows[i] for i in order]


def _span_totals(result: SalienceResult, method: str, spans: Sequence[tuple[int, int]]) -> list[float]:
    """Sum of token scores whose anchor character falls in each prompt span."""
    scores = result.summable(method)
    totals = [0.0] * len(spans)
    for index, span in enumerate(result.offsets):
        if span[0] == span[1]:
            continue
        anchor = token_anchor(result.text, span)
        if anchor >= result.prompt_length:
            continue
        for k, (start, end) in enumerate(spans):
            if start <= anchor < end:
                totals[k] += float(scores[index])
                break
    return totals


def _slot_key(slot) -> tuple[str, str]:
    return ("variable", slot.name) if slot.kind == "variable" else ("fixed", slot.text)


def _label(slot) -> str:
    return f"{{{slot.name}}}" if slot.kind == "variable" else f"“{excerpt(slot.text, 48)}”"


def part_diff(
    a: tuple[RenderedPrompt, SalienceResult],
    b: tuple[RenderedPrompt, SalienceResult],
    method: str,
    by_sentence: bool = True,
) -> list[PartDelta]:
    """Salience of each template part in A and B, aligned by variable name and fixed text.

    Fixed parts with the same text in both are split into sentences when ``by_sentence``.
    Parts that exist on one side only keep a score for that side and no delta.
    """
    (rendered_a, result_a), (rendered_b, result_b) = a, b
    slots_a, rows_a = _scored_slots(rendered_a, result_a, method)
    slots_b, rows_b = _scored_slots(rendered_b, result_b, method)
    where_a = Locator(result_a.text, result_a.prompt_length, rendered_a.slots)
    where_b = Locator(result_b.text, result_b.prompt_length, rendered_b.slots)
    out: list[PartDelta] = []
    for i, j in _aligned_slots(slots_a, slots_b):
        if j is None:
            row = _one_sided_row("A", slots_a[i], rows_a[i].total)
            out.append(replace(row, label=_reviewer_label(where_a, slots_a[i].start, slots_a[i].end)))
        elif i is None:
            row = _one_sided_row("B", slots_b[j], rows_b[j].total)
            out.append(replace(row, label=_reviewer_label(where_b, slots_b[j].start, slots_b[j].end)))
        elif by_sentence and slots_a[i].kind == "fixed":
            out.extend(_sentence_rows(slots_a[i], slots_b[j], result_a, result_b, method, where_a, where_b))
        else:
            row = _paired_row(slots_a[i], slots_b[j], rows_a[i].total, rows_b[j].total)
            out.append(replace(row, label=_reviewer_label(where_b, slots_b[j].start, slots_b[j].end)))
    return out


def _reviewer_label(locator: Locator, start: int, end: int) -> str:
    """'“Recommendation: You have to try it.” — the first example's Recommendation line': the
    part's own short text and where it sits, as the workbench's reading names places."""
    text = locator.text[start:end]
    short = f"“{excerpt(text, 32)}”" if text.strip() else "(empty)"
    where = locator.where(start, end) if text.strip() else ""
    return f"{short} — {where}" if where else short


def _scored_slots(rendered: RenderedPrompt, result: SalienceResult, method: str) -> tuple[list, list]:
    """The non-empty slots of a prompt and each one's roll-up of ``method``'s scores."""
    if method not in result.scores:
        raise InputError(f"The results have no '{method}' scores; recompute with that method.")
    slots = [s for s in rendered.slots if s.end > s.start]
    rows = rollup(slots, result.text, result.offsets, result.summable(method), result.prompt_length)
    return slots, rows


def _aligned_slots(slots_a: list, slots_b: list) -> list[tuple[int | None, int | None]]:
    """Index pairs (i, j) of slots that correspond; (i, None) and (None, j) for one-sided ones.

    Slots align by variable name and fixed text; replaced slots pair up when of the same kind."""
    keys_a, keys_b = [_slot_key(s) for s in slots_a], [_slot_key(s) for s in slots_b]
    pairs: list[tuple[int | None, int | None]] = []
    matcher = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        common = (i2 - i1) if tag == "equal" else min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for offset in range(common):
            i, j = i1 + offset, j1 + offset
            if tag == "equal" or slots_a[i].kind == slots_b[j].kind:
                pairs.append((i, j))
            else:
                pairs += [(i, None), (None, j)]
        pairs += [(i, None) for i in range(i1 + common, i2)]
        pairs += [(None, j) for j in range(j1 + common, j2)]
    return pairs


def _paired_row(slot_a, slot_b, total_a: float, total_b: float) -> PartDelta:
    same = slot_a.text == slot_b.text
    return PartDelta(
        _label(slot_a) if same or slot_a.kind == "variable" else slot_a.title,
        slot_a.kind,
        "same text" if same else "changed",
        slot_a.text,
        slot_b.text,
        total_a,
        total_b,
    )


def _one_sided_row(side: str, slot, total: float) -> PartDelta:
    in_a = side == "A"
    return PartDelta(
        _label(slot),
        slot.kind,
        f"only in {side}",
        slot.text if in_a else None,
        None if in_a else slot.text,
        total if in_a else None,
        None if in_a else total,
    )


def _sentence_rows(slot_a, slot_b, result_a, result_b, method, where_a, where_b) -> list[PartDelta]:
    """Two fixed blocks, sentence by sentence: equal sentences pair up, edited ones show as changed."""
    a = _Sentences.of(slot_a, result_a, method, where_a)
    b = _Sentences.of(slot_b, result_b, method, where_b)
    rows: list[PartDelta] = []
    matcher = difflib.SequenceMatcher(
        None, [t.strip() for t in a.texts], [t.strip() for t in b.texts], autojunk=False
    )
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        common = (i2 - i1) if tag == "equal" else min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(common):
            i, j = i1 + k, j1 + k
            status = "same text" if tag == "equal" else "changed"
            rows.append(
                PartDelta(
                    a.label(i),
                    "sentence",
                    status,
                    a.texts[i],
                    b.texts[j],
                    a.totals[i],
                    b.totals[j],
                    b.named(j),
                )
            )
        for i in range(i1 + common, i2):
            rows.append(
                PartDelta(
                    a.label(i), "sentence", "only in A", a.texts[i], None, a.totals[i], None, a.named(i)
                )
            )
        for j in range(j1 + common, j2):
            rows.append(
                PartDelta(
                    b.label(j), "sentence", "only in B", None, b.texts[j], None, b.totals[j], b.named(j)
                )
            )
    return rows


@dataclass(frozen=True)
class _Sentences:
    """One side's fixed block cut into its non-blank sentences, with each one's salience total."""

    slot: object
    spans: list[tuple[int, int]]  # within the slot's text
    texts: list[str]
    totals: list[float]
    where: Locator

    @classmethod
    def of(cls, slot, result: SalienceResult, method: str, where: Locator) -> _Sentences:
        spans = [span for span in sentence_spans(slot.text) if slot.text[span[0] : span[1]].strip()]
        totals = _span_totals(result, method, [(slot.start + s, slot.start + e) for s, e in spans])
        return cls(slot, spans, [slot.text[s:e] for s, e in spans], totals, where)

    def label(self, k: int) -> str:
        return f"{self.slot.title} · “{excerpt(self.texts[k], 40)}”"

    def named(self, k: int) -> str:
        start, end = self.spans[k]
        return _reviewer_label(self.where, self.slot.start + start, self.slot.start + end)
