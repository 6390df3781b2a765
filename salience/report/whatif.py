""" "What if I delete this?" in one plain line: what takes the selection's place in the new output.

A reviewer who deletes a prompt line wants to know what happened to the part of the output
they clicked, not a word count. `counterpart` finds that part in the new output:

1. by its leading label ("Recommendation: …" → the new output's Recommendation line, the
   same occurrence of the label when it repeats);
2. else by its first two words (the sentence of the new output that starts with them);
3. else by its position (the sentence with the same number in the new output).

`Counterpart.sentence` says it in one line: "Without this line the recommendation changes
from ‘You have to try it.’ to ‘Avoid.’", "… stays the same", or that the new output has no
counterpart (or nothing at all).
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

from salience.core.text import excerpt
from salience.prompts.describe import normalized_text
from salience.prompts.segments import sentence_spans

_LABEL = regex.compile(r"\s*(\p{L}[\p{L}\p{N}'’\- ]{0,30}?)[^\S\n]*:(?=\s|$)")
QUOTE_LIMIT = 120


@dataclass(frozen=True)
class Counterpart:
    """The selection in the old output and what took its place in the new one.

    ``label`` is the selection's leading label ("Recommendation") or ""; ``before``/``after``
    are the texts compared (after the label when there is one); ``after`` is None when the new
    output has no counterpart; ``found_by`` is "label", "words", "position" or "" (not found).
    """

    label: str
    before: str
    after: str | None
    old_sentence: str
    new_sentence: str | None
    found_by: str
    new_output: str = ""

    @property
    def changed(self) -> bool:
        return self.after is None or normalized_text(self.before) != normalized_text(self.after)

    def sentence(self, removed: str = "line") -> str:
        """One plain line, e.g. "Without this line the recommendation changes from ‘You have
        to try it.’ to ‘Avoid.’"; ``removed`` names what was deleted (line, sentence, word …)."""
        start = f"Without this {removed}"
        if not self.new_output.strip():
            return f"{start} the model writes nothing at all."
        what = f"the {self.label.lower()}" if self.label else "the selected text"
        if self.after is None:
            lines = [line for line in self.new_output.splitlines() if line.strip()]
            more = " and goes on" if len(lines) > 1 else ""
            reads = f"; it reads {_quoted(lines[0], 80)}{more}"
            if self.label:
                return f"{start} the new output has no {self.label} line{reads}"
            return f"{start} the new output has nothing in the selection's place{reads}"
        before, after = _quoted(self.before), _quoted(self.after)
        if not self.changed:
            return f"{start} {what} stays the same: {before}"
        return f"{start} {what} changes from {before} to {after}"


def _quoted(text: str, limit: int = QUOTE_LIMIT) -> str:
    flat = " ".join(text.split())
    return "‘" + (excerpt(flat, limit) if flat else "(nothing)") + "’"


def leading_label(text: str) -> str:
    """'Recommendation' for 'Recommendation: You have to try it.'; '' without a short label."""
    match = _LABEL.match(text)
    if not match or len(match.group(1).split()) > 4:
        return ""
    return match.group(1).strip()


def _after_label(text: str, label: str) -> str:
    if not label:
        return text.strip()
    match = _LABEL.match(text)
    return text[match.end() :].strip() if match else text.strip()


def _sentences(output: str) -> list[tuple[int, int]]:
    return [(s, e) for s, e in sentence_spans(output) if output[s:e].strip()]


def _sentence_at(output: str, position: int) -> tuple[int, int] | None:
    return next(((s, e) for s, e in _sentences(output) if s <= position < e), None)


def _label_positions(output: str, label: str) -> list[int]:
    """Where lines (or sentences) of the output start with ``label:``."""
    found = []
    for start, end in _sentences(output):
        piece = output[start:end]
        if leading_label(piece).lower() == label.lower():
            found.append(start + len(piece) - len(piece.lstrip()))
    return found


def counterpart(before_output: str, after_output: str, selection: tuple[int, int]) -> Counterpart:
    """What takes the place of ``before_output[selection[0]:selection[1]]`` in ``after_output``."""
    start, end = selection
    selected = before_output[start:end]
    label = leading_label(selected)
    before = _after_label(selected, label)
    old_sentence = selected.strip()
    if not after_output.strip():
        return Counterpart(label, before, None, old_sentence, None, "", after_output)
    if label:
        old_places = _label_positions(before_output, label)
        new_places = _label_positions(after_output, label)
        if new_places:
            first = start + len(selected) - len(selected.lstrip())
            number = sum(1 for p in old_places if p < first)  # which occurrence of the label
            place = new_places[min(number, len(new_places) - 1)]
            span = _sentence_at(after_output, place)
            if span:
                found = after_output[place : span[1]].strip()
                return Counterpart(
                    label, before, _after_label(found, label), old_sentence, found, "label", after_output
                )
        return Counterpart(label, before, None, old_sentence, None, "", after_output)
    words = selected.split()[:2]
    if words:
        lead = " ".join(words)
        found_at = after_output.find(lead)
        if found_at >= 0:
            span = _sentence_at(after_output, found_at)
            if span:
                found = after_output[found_at : span[1]].strip()
                return Counterpart("", before, found, old_sentence, found, "words", after_output)
    old = _sentences(before_output)
    number = next((k for k, (s, e) in enumerate(old) if s <= start < e), None)
    new = _sentences(after_output)
    if number is not None and number < len(new):
        found = after_output[new[number][0] : new[number][1]].strip()
        return Counterpart("", before, found, old_sentence, found, "position", after_output)
    return Counterpart("", before, None, old_sentence, None, "", after_output)
