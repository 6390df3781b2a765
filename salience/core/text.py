"""Small text helpers shared by the engine, the CLI and the pages (pure Python, no TensorFlow)."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator

from salience.core.errors import InputError

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
ELLIPSIS = "…"


def unescape(text: str) -> str:
    """Turn the two characters backslash-n (and t, r, backslash) into the real ones."""
    return re.sub(r"\\([ntr\\])", lambda m: _ESCAPES[m.group(1)], text)


def escape(text: str) -> str:
    """The inverse of ``unescape``: newlines, tabs, returns and backslashes as two characters."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def escape_braces(text: str) -> str:
    """Plain text as a template with no variables: ``{`` and ``}`` doubled."""
    return text.replace("{", "{{").replace("}", "}}")


def excerpt(text: str, limit: int = 48) -> str:
    """One line of at most ``limit`` characters, cut at a word with "…" (a first word longer
    than the limit is cut inside it, so an excerpt is never just "…")."""
    short = textwrap.shorten(text, width=limit, placeholder=ELLIPSIS)
    if short == ELLIPSIS:
        flat = " ".join(text.split())
        return flat[: limit - 1] + ELLIPSIS
    return short


def plain_duration(seconds: float) -> str:
    """A time as a reviewer reads it: '12 s' under a minute, then '3 min 20 s', '1 h 05 min'."""
    whole = max(0, int(round(seconds)))
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s" if minutes < 10 and rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def json_lines(text: str, label: str = "Line") -> Iterator[tuple[int, object]]:
    """(line number, value) for each non-blank line of a JSONL text, numbered from 1.

    A line that is not JSON is an `InputError` naming it ("Line 3: not valid JSON (…)";
    ``label`` is the word for a line, e.g. "Row")."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(
                f"{label} {number}: not valid JSON ({error.msg} at column {error.colno})."
            ) from None
