"""Plain-words places in a prompt: "the first example's Recommendation line", "the 2nd of 3 copies".

A reviewer cannot tell two identical sentences apart by their text, so every
segment gets a short description of where it is, built from the prompt's own
structure, not from any particular sample:

- blocks: paragraphs separated by blank lines; paragraphs whose lines carry the
  same leading label ("Taste-likes:", "Q:") form a group of *examples*, named by
  their order ("the first example"; the last one, which the output continues, is "the
  example being answered");
- lines: a line that starts with a short label ("Recommendation: …") is named by it;
- template parts: a segment inside a variable's value says so ("the ‘menu item’ value");
- copies: identical texts that the above does not tell apart get an ordinal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import regex

from salience.prompts.segments import Segment
from salience.prompts.templates import Slot, humanize

_BLOCK_BREAK = regex.compile(r"\n[^\S\n]*\n\s*")
_LABEL = regex.compile(r"[^\S\n]*(\p{L}[\p{L}\p{N}'’\- ]{0,30}?)[^\S\n]*:(?=\s|$)")
ANSWERED = "the example being answered"
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")


def ordinal(number: int) -> str:
    """1 -> 'first' … 10 -> 'tenth', then '11th', '22nd', …"""
    if 1 <= number <= len(_ORDINALS):
        return _ORDINALS[number - 1]
    return numbered(number)


def numbered(number: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def normalized_text(text: str) -> str:
    """Text compared for 'identical': whitespace collapsed, ends trimmed."""
    return " ".join(text.split())


@dataclass(frozen=True)
class _Line:
    start: int
    end: int
    label: str  # "" when the line has no leading label


@dataclass(frozen=True)
class _Block:
    start: int
    end: int
    lines: tuple[_Line, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(line.label for line in self.lines if line.label)


def _label_of(line: str) -> str:
    match = _LABEL.match(line)
    if not match or len(match.group(1).split()) > 4:
        return ""
    return match.group(1)


class Locator:
    """Describes where a character span of a prompt is, in words a reviewer understands."""

    def __init__(self, text: str, prompt_length: int, slots: Sequence[Slot] = ()):
        self.text = text
        self.prompt_length = prompt_length
        self.slots = tuple(slot for slot in slots if slot.end > slot.start)
        self.blocks = self._blocks(text[:prompt_length])
        self.group_names = self._groups()

    @staticmethod
    def _blocks(prompt: str) -> list[_Block]:
        edges = [0, *(m.end() for m in _BLOCK_BREAK.finditer(prompt)), len(prompt)]
        blocks = []
        for start, end in zip(edges, edges[1:]):
            if end <= start or not prompt[start:end].strip():
                continue
            lines, cursor = [], start
            for piece in prompt[start:end].split("\n"):
                if piece.strip():
                    lines.append(_Line(cursor, cursor + len(piece), _label_of(piece)))
                cursor += len(piece) + 1
            blocks.append(_Block(start, end, tuple(lines)))
        return blocks

    def _groups(self) -> dict[int, str]:
        """Block index -> 'the first example', for blocks that repeat one labelled structure."""
        by_first_label: dict[str, list[int]] = {}
        for index, block in enumerate(self.blocks):
            if len(block.labels) >= 2:
                by_first_label.setdefault(block.labels[0], []).append(index)
        names: dict[int, str] = {}
        for members in by_first_label.values():
            if len(members) < 2:
                continue
            for position, index in enumerate(members, start=1):
                block = self.blocks[index]
                answered = (
                    index == len(self.blocks) - 1 and not self.text[block.end : self.prompt_length].strip()
                )
                if answered and position == len(members):
                    names[index] = ANSWERED
                else:
                    names[index] = f"the {ordinal(position)} example"
        return names

    def _block_at(self, position: int) -> int | None:
        for index, block in enumerate(self.blocks):
            if block.start <= position < block.end:
                return index
        return None

    def _line_name(self, block_index: int | None, line: _Line) -> str:
        """'Recommendation line', with an ordinal when the label repeats outside example groups."""
        if block_index is not None and block_index in self.group_names:
            return f"{line.label} line"
        same = [
            other
            for index, block in enumerate(self.blocks)
            if index not in self.group_names
            for other in block.lines
            if other.label == line.label
        ]
        if len(same) > 1:
            return f"{numbered(same.index(line) + 1)} {line.label} line"
        return f"{line.label} line"

    def where(self, start: int, end: int) -> str:
        """'the first example's Recommendation line', 'in the ‘menu item’ value', or '' when the
        text names itself (an unlabelled line outside any repeated structure)."""
        if start >= self.prompt_length:
            return "in the output"
        first = start + len(self.text[start:end]) - len(self.text[start:end].lstrip())
        last = start + len(self.text[start:end].rstrip())
        if last <= first:
            return ""
        block_index = self._block_at(first)
        block_name = self.group_names.get(block_index, "") if block_index is not None else ""
        line = None
        if block_index is not None:
            line = next((ln for ln in self.blocks[block_index].lines if ln.start <= first < ln.end), None)
        place = ""
        if line is not None and line.label and last <= line.end:
            content = self.text[line.start : line.end]
            whole = first <= line.start + len(content) - len(content.lstrip()) and last >= line.start + len(
                content.rstrip()
            )
            line_name = self._line_name(block_index, line)
            if block_name == ANSWERED:
                place = f"the {line_name} of {block_name}"
            else:
                place = (f"{block_name}'s " if block_name else "the ") + line_name
            place = place if whole else f"in {place}"
        elif block_name:
            place = f"in {block_name}"
        variable = self._variable(first, last)
        return ", ".join(part for part in (place, variable) if part)

    def _variable(self, first: int, last: int) -> str:
        for slot in self.slots:
            if slot.kind != "variable" or slot.end <= first or slot.start >= last:
                continue
            name = f"the ‘{humanize(slot.name)}’ value"
            inside = slot.start <= first and last <= slot.end
            return name if inside else f"with {name}"
        return ""


def describe_segments(
    segments: Sequence[Segment], text: str, prompt_length: int, slots: Sequence[Slot] = ()
) -> list[str]:
    """A 'where' phrase for every segment ('' for output segments and self-explaining ones).

    Identical prompt texts whose places read the same get 'copy k of n' added, so no two
    copies are ever described alike.
    """
    locator = Locator(text, prompt_length, slots)
    places = [
        "" if seg.in_target or seg.start >= prompt_length else locator.where(seg.start, seg.end)
        for seg in segments
    ]
    copies: dict[str, list[int]] = {}
    for index, seg in enumerate(segments):
        key = normalized_text(seg.text)
        if key and not seg.in_target and seg.start < prompt_length:
            copies.setdefault(key, []).append(index)
    for members in copies.values():
        if len(members) < 2:
            continue
        seen: dict[str, int] = {}
        for index in members:
            seen[places[index]] = seen.get(places[index], 0) + 1
        for position, index in enumerate(members, start=1):
            if seen[places[index]] > 1:
                copy = f"the {numbered(position)} of {len(members)} copies"
                places[index] = f"{places[index]}, {copy}" if places[index] else copy
    return places
