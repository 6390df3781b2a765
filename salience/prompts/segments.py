"""Group tokens into readable segments and aggregate their scores.

Segments are defined by *start positions* in character space; each token joins the
segment that contains its anchor (its first non-space character, or its start when
it is all whitespace, so trailing spaces and newlines stay with the text before
them). Every token lands in exactly one segment, segments are contiguous, and
together they cover the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import regex

from salience.core.errors import InputError
from salience.prompts.templates import Slot

GRANULARITIES = ("tokens", "words", "sentences", "lines", "paragraphs", "slots", "regex")
AGGREGATIONS = ("sum", "mean", "max")
REGEX_TIMEOUT_SECONDS = 0.5
MAX_REGEX_LENGTH = 500

# Words that end in a period without ending a sentence (compared lower-case).
ABBREVIATIONS = frozenset(
    [
        "e.g",
        "i.e",
        "etc",
        "vs",
        "cf",
        "al",
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "st",
        "jr",
        "sr",
        "inc",
        "ltd",
        "co",
        "fig",
        "no",
        "vol",
        "approx",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "u.s",
        "u.k",
        "a.m",
        "p.m",
        "ph.d",
    ]
)

_WORD_START = regex.compile(r"(?<!\S)\S")
_SENTENCE_END = regex.compile(r"(?<=[.!?…][\"'”’)\]]*)\s+(?=\S)|(?<=[。！？])(?=\S)|\n\s*(?=\S)")
_LINE_START = regex.compile(r"(?<=\n)(?=.)", regex.DOTALL)
_PARAGRAPH_START = regex.compile(r"\n[^\S\n]*\n\s*(?=\S)")


@dataclass(frozen=True)
class Segment:
    """Tokens ``[token_start, token_end)`` covering characters ``[start, end)``."""

    start: int
    end: int
    token_start: int
    token_end: int
    text: str
    in_target: bool = False


def token_anchor(text: str, span: tuple[int, int]) -> int:
    start, end = span
    for index in range(start, end):
        if not text[index].isspace():
            return index
    return start


def _sentence_starts(text: str) -> list[int]:
    starts = []
    for match in _SENTENCE_END.finditer(text):
        head = text[: match.start()]
        if match.group().startswith("\n") or not head.endswith("."):
            starts.append(match.end())
            continue
        word = regex.search(r"(\S+)\.$", head)
        previous = word.group(1).lower().lstrip("(\"'“‘") if word else ""
        if previous in ABBREVIATIONS or (len(previous) == 1 and previous.isalpha()):
            continue
        starts.append(match.end())
    return starts


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences (and lines) of a text, covering all of it."""
    edges = [0, *(start for start in _sentence_starts(text) if 0 < start < len(text)), len(text)]
    return [(start, end) for start, end in zip(edges, edges[1:]) if end > start]


def regex_starts(text: str, pattern: str, timeout: float = REGEX_TIMEOUT_SECONDS) -> list[int]:
    """Start positions of a user's pattern, with a time limit; errors say what to fix."""
    if not pattern:
        raise InputError("The custom pattern is empty; type a regular expression such as ^Analysis.")
    if len(pattern) > MAX_REGEX_LENGTH:
        raise InputError(f"The custom pattern is longer than {MAX_REGEX_LENGTH} characters; shorten it.")
    try:
        compiled = regex.compile(pattern, regex.MULTILINE)
    except regex.error as error:
        raise InputError(f"The custom pattern is not a valid regular expression: {error}.") from None
    try:
        return [match.start() for match in compiled.finditer(text, timeout=timeout)]
    except TimeoutError:
        raise InputError(
            f"The custom pattern took longer than {timeout:g} s on this text "
            "(nested repeats such as (a+)+ backtrack badly); simplify it."
        ) from None


def segment_starts(
    text: str,
    granularity: str,
    slots: Sequence[Slot] = (),
    pattern: str | None = None,
) -> list[int]:
    """Character positions where segments begin, for a granularity other than tokens."""
    if granularity == "words":
        return [m.start() for m in _WORD_START.finditer(text)]
    if granularity == "sentences":
        return _sentence_starts(text)
    if granularity == "lines":
        return [m.start() for m in _LINE_START.finditer(text)]
    if granularity == "paragraphs":
        return [m.end() for m in _PARAGRAPH_START.finditer(text)]
    if granularity == "slots":
        return [slot.start for slot in slots]
    if granularity == "regex":
        return regex_starts(text, pattern or "")
    raise InputError(f"Unknown granularity '{granularity}'; choose one of: {', '.join(GRANULARITIES)}.")


def make_segments(
    text: str,
    offsets: Sequence[tuple[int, int]],
    granularity: str = "tokens",
    prompt_length: int | None = None,
    slots: Sequence[Slot] = (),
    pattern: str | None = None,
) -> list[Segment]:
    """Partition tokens into contiguous segments at a granularity.

    ``prompt_length`` (where the target starts) is always a boundary; with the
    ``slots`` granularity the target is one segment. A leading empty token
    (``<bos>``) is a segment of its own so it does not inflate the first words.
    """
    if not offsets:
        return []
    boundary = len(text) if prompt_length is None else prompt_length
    if granularity == "tokens":
        segment_ids = list(range(len(offsets)))
    else:
        starts = segment_starts(
            text[:boundary] if granularity == "slots" else text, granularity, slots, pattern
        )
        edges = np.unique(np.asarray([0, boundary, *starts], dtype=np.int64))
        anchors = np.asarray([token_anchor(text, span) for span in offsets], dtype=np.int64)
        segment_ids = list(np.searchsorted(edges, anchors, side="right"))
        if len(offsets) > 1 and offsets[0][0] == offsets[0][1]:
            segment_ids[0] = -1  # <bos> carries no text: keep it apart from the first words
    segments: list[Segment] = []
    first = 0
    for index in range(1, len(offsets) + 1):
        if index == len(offsets) or segment_ids[index] != segment_ids[first]:
            start = offsets[first][0] if not segments else segments[-1].end
            end = len(text) if index == len(offsets) else offsets[index][0]
            end = max(end, start)
            in_target = prompt_length is not None and token_anchor(text, offsets[first]) >= prompt_length
            if prompt_length is not None and first == 0:
                in_target = False
            segments.append(Segment(start, end, first, index, text[start:end], in_target))
            first = index
    return segments


def aggregate(scores: np.ndarray, segments: Sequence[Segment], how: str = "sum") -> np.ndarray:
    """One score per segment: the sum, mean or largest-magnitude value of its tokens."""
    if how not in AGGREGATIONS:
        raise InputError(f"Unknown aggregation '{how}'; choose one of: {', '.join(AGGREGATIONS)}.")
    values = np.zeros(len(segments), dtype=np.float64)
    for index, seg in enumerate(segments):
        chunk = np.asarray(scores[seg.token_start : seg.token_end], dtype=np.float64)
        if chunk.size == 0:
            continue
        if how == "sum":
            values[index] = chunk.sum()
        elif how == "mean":
            values[index] = chunk.mean()
        else:
            values[index] = chunk[np.argmax(np.abs(chunk))]
    return values


def normalize(values: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, float]:
    """Divide by the largest magnitude in view (or a shared ``scale``); returns (values, scale)."""
    values = np.asarray(values, dtype=np.float64)
    if scale is None:
        scale = float(np.max(np.abs(values))) if values.size else 0.0
    if scale <= 0 or not np.isfinite(scale):
        return np.zeros_like(values), 0.0
    return np.clip(values / scale, -1.0, 1.0), scale
