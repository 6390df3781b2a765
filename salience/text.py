"""Small text helpers shared by the engine, the CLI and the pages (pure Python, no TensorFlow)."""

from __future__ import annotations

import re
import textwrap

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
