"""Prompt templates in Python f-string syntax: ``{name}`` fields, ``{{`` and ``}}`` literals.

Nothing in a template is ever evaluated: fields are plain names. Rendering returns
the prompt text plus the character span of every fixed block and every variable
occurrence, so scores on the prompt can be traced back to the template.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass

from salience.core.errors import InputError


class TemplateError(InputError):
    """A template that cannot be parsed or rendered; carries line and column (1-based)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        self.line, self.column = line, column
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(f"Template {where}{message}")


@dataclass(frozen=True)
class TemplatePiece:
    """A fixed block (``text`` is the literal text) or a field (``text`` is the variable name)."""

    kind: str  # "fixed" or "variable"
    text: str
    source_start: int
    source_end: int


@dataclass(frozen=True)
class Template:
    source: str
    pieces: tuple[TemplatePiece, ...]

    @property
    def variables(self) -> tuple[str, ...]:
        """Variable names in order of first use (each once)."""
        return tuple(dict.fromkeys(p.text for p in self.pieces if p.kind == "variable"))


@dataclass(frozen=True)
class Slot:
    """A span of the rendered prompt that came from one template piece.

    ``name`` identifies it (the variable name, or "text 1", "text 2", … for fixed blocks);
    ``label`` is what a reviewer reads: the variable name in words, or a fixed block's first words.
    """

    kind: str  # "fixed" or "variable"
    name: str
    start: int
    end: int
    text: str
    label: str = ""

    @property
    def title(self) -> str:
        """The label, or a name made from the slot itself when none was given."""
        if self.label:
            return self.label
        return humanize(self.name) if self.kind == "variable" else content_label(self.text)


@dataclass(frozen=True)
class RenderedPrompt:
    text: str
    slots: tuple[Slot, ...]

    def slots_named(self, name: str) -> tuple[Slot, ...]:
        return tuple(slot for slot in self.slots if slot.name == name)


def humanize(name: str) -> str:
    """A variable name in words: 'menu_item' -> 'menu item', 'foodLikes' -> 'food likes'."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ")
    return " ".join(spaced.split()).lower() or name


def content_label(text: str, words: int = 4, limit: int = 32) -> str:
    """A fixed block named by its first words: '“Analyze a menu item…”'; whitespace-only blocks
    are 'line break' / 'blank line'."""
    if not text.strip():
        return "blank line" if text.count("\n") > 1 else "line break" if "\n" in text else "space"
    chosen = text.split()[:words]
    label = " ".join(chosen)
    cut = len(chosen) < len(text.split()) or len(label) > limit
    if len(label) > limit:
        label = label[: limit - 1].rstrip()
    return f"“{label}…”" if cut else f"“{label}”"


def _unique_labels(labels: list[str]) -> list[str]:
    """Number repeated labels: '“Analysis:”', '“Analysis:” (2)'."""
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return unique


def _line_column(source: str, index: int) -> tuple[int, int]:
    line = source.count("\n", 0, index) + 1
    column = index - (source.rfind("\n", 0, index) + 1) + 1
    return line, column


def _fail(source: str, index: int, message: str) -> TemplateError:
    return TemplateError(message, *_line_column(source, index))


def _check_field(source: str, start: int, body: str) -> None:
    if not body.strip():
        raise _fail(source, start, "has an empty field '{}'; put a variable name inside the braces.")
    if body.strip().isdigit():
        raise _fail(source, start, f"has a positional field '{{{body}}}'; use a name such as {{item}}.")
    for mark, what in (
        (":", "a format spec"),
        ("!", "a conversion"),
        (".", "attribute access"),
        ("[", "indexing"),
    ):
        if mark in body:
            raise _fail(
                source,
                start,
                f"field '{{{body}}}' uses {what}, which templates do not evaluate; use a plain name.",
            )
    if not body.isidentifier():
        raise _fail(
            source,
            start,
            f"field '{{{body}}}' is not a valid variable name; use letters, digits and underscores.",
        )


def parse_template(source: str) -> Template:
    """Parse a template into fixed blocks and fields; raises `TemplateError` with line/column."""
    pieces: list[TemplatePiece] = []
    literal: list[str] = []
    literal_start = 0
    index = 0
    length = len(source)

    def flush(end: int) -> None:
        if literal:
            pieces.append(TemplatePiece("fixed", "".join(literal), literal_start, end))
            literal.clear()

    while index < length:
        char = source[index]
        if char == "{":
            if source.startswith("{{", index):
                if not literal:
                    literal_start = index
                literal.append("{")
                index += 2
                continue
            close = source.find("}", index + 1)
            nested = source.find("{", index + 1)
            if close < 0 or (0 <= nested < close):
                raise _fail(source, index, "has a '{' that is never closed; write '{{' for a literal brace.")
            body = source[index + 1 : close]
            _check_field(source, index, body)
            flush(index)
            pieces.append(TemplatePiece("variable", body, index, close + 1))
            index = close + 1
            literal_start = index
            continue
        if char == "}":
            if source.startswith("}}", index):
                if not literal:
                    literal_start = index
                literal.append("}")
                index += 2
                continue
            raise _fail(source, index, "has a '}' with no matching '{'; write '}}' for a literal brace.")
        if not literal:
            literal_start = index
        literal.append(char)
        index += 1
    flush(length)
    return Template(source, tuple(pieces))


def render(template: Template | str, values: Mapping[str, str], allow_unused: bool = False) -> RenderedPrompt:
    """Fill a template; returns the text and the span of every fixed block and variable."""
    if isinstance(template, str):
        template = parse_template(template)
    missing = [name for name in template.variables if name not in values]
    if missing:
        raise TemplateError(f"needs a value for {', '.join(missing)}; fill in every variable.")
    unused = [name for name in values if name not in template.variables]
    if unused and not allow_unused:
        raise TemplateError(f"has no field named {', '.join(unused)}; remove those values or add {{fields}}.")
    parts: list[str] = []
    slots: list[Slot] = []
    cursor = 0
    fixed_count = 0
    for piece in template.pieces:
        if piece.kind == "fixed":
            fixed_count += 1
            text, name = piece.text, f"text {fixed_count}"
        else:
            value = values[piece.text]
            if not isinstance(value, str):
                raise TemplateError(f"value for '{piece.text}' must be text, got {type(value).__name__}.")
            text, name = value, piece.text
        parts.append(text)
        slots.append(Slot(piece.kind, name, cursor, cursor + len(text), text))
        cursor += len(text)
    fixed = [i for i, slot in enumerate(slots) if slot.kind == "fixed"]
    for index, label in zip(fixed, _unique_labels([content_label(slots[i].text) for i in fixed])):
        slots[index] = dataclasses.replace(slots[index], label=label)
    for index, slot in enumerate(slots):
        if slot.kind == "variable":
            slots[index] = dataclasses.replace(slot, label=humanize(slot.name))
    return RenderedPrompt("".join(parts), tuple(slots))
