"""The one colour scale: every heatmap cell, legend bar, chart bar and export takes its colours here.

Unsigned methods run white -> purple; signed ones white -> teal (positive) and white -> orange
(negative). The heatmap component, the HTML export and the charts receive computed colours and
never compute their own.
"""

from __future__ import annotations

from collections.abc import Iterable

WHITE = (255, 255, 255)
PURPLE = (109, 40, 217)  # the strongest unsigned score
TEAL = (0, 150, 136)  # the strongest positive score
ORANGE = (230, 97, 0)  # the strongest negative score
DARK_TEXT = "#111"
LIGHT_TEXT = "#fff"
LIGHT_TEXT_FROM = 0.6  # above this strength the text on a cell turns white


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


POSITIVE_HEX = _hex(TEAL)
NEGATIVE_HEX = _hex(ORANGE)
UNSIGNED_HEX = _hex(PURPLE)


def _strength(value: float, intensity: float) -> float:
    return max(-1.0, min(1.0, value * intensity))


def colour(value: float, signed: bool, intensity: float = 1.0) -> str:
    """Background colour of a normalised score in [-1, 1] (brightened by ``intensity``)."""
    v = _strength(value, intensity)
    end = PURPLE if not signed else TEAL if v >= 0 else ORANGE
    a = abs(v)
    r, g, b = (round(w - a * (w - e)) for w, e in zip(WHITE, end, strict=True))
    return f"rgb({r},{g},{b})"


def text_colour(value: float, intensity: float = 1.0) -> str:
    """Text colour that stays readable on ``colour(value, ...)``."""
    return LIGHT_TEXT if abs(value * intensity) > LIGHT_TEXT_FROM else DARK_TEXT


def legend_gradient(signed: bool) -> str:
    """CSS background for the legend bar, from the low end to the high end."""
    if signed:
        return f"linear-gradient(90deg, {colour(-1, True)}, #fff, {colour(1, True)})"
    return f"linear-gradient(90deg, #fff, {colour(1, False)})"


def paint(cells: Iterable[dict], signed: bool, intensity: float = 1.0) -> list[dict]:
    """Copies of heatmap cells (``value``, ``output``) with ``background`` and ``color`` set.

    Prompt cells are always coloured; output cells only where they carry a score (output
    before the explained part is context too). Uncoloured cells get empty strings."""
    painted = []
    for cell in cells:
        value = float(cell.get("value") or 0.0)
        coloured = not cell.get("output") or value != 0.0
        painted.append(
            {
                **cell,
                "background": colour(value, signed, intensity) if coloured else "",
                "color": text_colour(value, intensity) if coloured else "",
            }
        )
    return painted
