"""Blind side-by-side review of two prompt variants: which output each reviewer saw on the left,
their verdicts, and the statistics of a review (win rates with ties counted half and a 95%
interval, agreement between reviewers, position bias, disagreements). No Streamlit here.

A verdict is stored in variant terms (``first``: the first variant's output is better,
``second``, ``same``, ``neither``) together with the variant that was shown on the left, so the
page's *A is better* means ``first`` or ``second`` depending on the side it was shown on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape

from salience.evaluation.runs import wilson_interval

CHOICES = ("first", "second", "same", "neither")
BUTTONS = ("A", "B", "same", "neither")  # what the reviewer clicks: A is the left output
MAX_REASON = 2_000  # characters of a reviewer's reason that are kept
CHOICE_WORDS = {
    "first": "the first variant is better",
    "second": "the second variant is better",
    "same": "about the same",
    "neither": "both unacceptable",
}


@dataclass(frozen=True)
class Verdict:
    """One reviewer's answer on one item."""

    item: int  # the item's id
    reviewer: str
    choice: str  # one of CHOICES
    left: int  # the variant (0 or 1) whose output was shown on the left, as A
    reason: str = ""

    def __post_init__(self) -> None:
        if self.choice not in CHOICES:
            raise ValueError(f"unknown verdict {self.choice!r}")
        if self.left not in (0, 1):
            raise ValueError("left must be 0 or 1")

    @property
    def button(self) -> str:
        """What the reviewer clicked: A (left), B (right), same or neither."""
        return button_for(self.choice, self.left)

    @property
    def left_won(self) -> bool | None:
        """True when the left output was preferred, False when the right one, None otherwise."""
        if self.choice not in ("first", "second"):
            return None
        return (self.choice == "first") == (self.left == 0)


@dataclass(frozen=True)
class ReviewItem:
    """One thing to judge: the inputs, the two variants' outputs, and their automatic checks."""

    id: int
    position: int  # the order reviewers see items in
    inputs: dict[str, str]
    outputs: tuple[str, str]
    passed: tuple[bool | None, bool | None] = (None, None)  # the evaluation's checks, when known
    row: int | None = None  # the evaluation's row (0-based)
    values: tuple[dict[str, str], dict[str, str]] = field(default_factory=lambda: ({}, {}))


def left_variant(review_key: str, item_key: object, reviewer: str) -> int:
    """Which variant is shown on the left: random-looking per item and per reviewer, and the same
    on every visit (a refresh, another day), so a reviewer's sides never change under them."""
    digest = hashlib.sha256(f"{review_key}\x00{item_key}\x00{reviewer_key(reviewer)}".encode()).digest()
    return digest[0] & 1


def balanced_sides(review_key: str, item_keys: Sequence[object], reviewer: str) -> dict[object, int]:
    """Which variant each item shows on the left for one reviewer: drawn at random per item and
    reviewer (the same on every visit), yet balanced, each variant on the left for half the items
    (one more for an odd count), so the side an output is shown on cannot stand in for the variant."""
    ranked = sorted(
        item_keys,
        key=lambda item: hashlib.sha256(
            f"{review_key}\x00{item}\x00{reviewer_key(reviewer)}".encode()
        ).digest(),
    )
    offset = left_variant(review_key, "", reviewer)
    return {item: (rank + offset) % 2 for rank, item in enumerate(ranked)}


def reviewer_key(name: str) -> str:
    """Who a name is: runs of spaces made one, case ignored ("Ana  Lopez" is "ana lopez")."""
    return " ".join(name.split()).casefold()


def choice_for(button: str, left: int) -> str:
    """The verdict in variant terms for a click on a page where ``left`` was shown as A."""
    if button == "A":
        return CHOICES[left]
    if button == "B":
        return CHOICES[1 - left]
    if button in ("same", "neither"):
        return button
    raise ValueError(f"unknown button {button!r}")


def button_for(choice: str, left: int) -> str:
    if choice == "first":
        return "A" if left == 0 else "B"
    if choice == "second":
        return "B" if left == 0 else "A"
    return choice


# ---- statistics ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class WinRate:
    """A variant's record: wins, ties (about the same) and losses; "both unacceptable" apart."""

    name: str
    wins: int
    ties: int
    losses: int
    neither: int

    @property
    def judged(self) -> int:
        """Verdicts that compare the two outputs (all but "both unacceptable")."""
        return self.wins + self.ties + self.losses

    @property
    def total(self) -> int:
        return self.judged + self.neither

    @property
    def rate(self) -> float | None:
        """Wins plus half the ties, over the judged verdicts; None before any."""
        return (self.wins + 0.5 * self.ties) / self.judged if self.judged else None

    @property
    def interval(self) -> tuple[float, float]:
        """95% Wilson score interval of the rate (ties count half a win)."""
        return wilson_interval(self.wins + 0.5 * self.ties, self.judged)  # type: ignore[arg-type]

    @property
    def neither_rate(self) -> float | None:
        return self.neither / self.total if self.total else None

    def to_json(self) -> dict:
        return {
            "variant": self.name,
            "wins": self.wins,
            "ties": self.ties,
            "losses": self.losses,
            "both_unacceptable": self.neither,
            "win_rate": _rounded(self.rate),
            "interval": [round(x, 4) for x in self.interval] if self.judged else None,
            "both_unacceptable_rate": _rounded(self.neither_rate),
        }


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def win_rates(verdicts: Iterable[Verdict], names: Sequence[str]) -> tuple[WinRate, WinRate]:
    """Each variant's wins, ties, losses and "both unacceptable" over the verdicts."""
    counts = Counter(v.choice for v in verdicts)
    first, second, same, neither = (counts[c] for c in CHOICES)
    return (
        WinRate(names[0], first, same, second, neither),
        WinRate(names[1], second, same, first, neither),
    )


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters over the items both rated; None when it is undefined
    (no items, or both raters used one and the same answer throughout)."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[c] * second[c] for c in set(first) | set(second)) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1 - expected)


def krippendorff_alpha(units: Iterable[Sequence[str]]) -> float | None:
    """Krippendorff's alpha for nominal answers; each unit is the answers one item got (any
    number of raters, missing ones simply absent). Units with fewer than two answers are left
    out. None when it is undefined (fewer than two pairable answers, or only one answer used)."""
    coincidence: dict[tuple[str, str], float] = defaultdict(float)
    for unit in units:
        m = len(unit)
        if m < 2:
            continue
        counts = Counter(unit)
        for c, nc in counts.items():
            for k, nk in counts.items():
                pairs = nc * (nc - 1) if c == k else nc * nk
                if pairs:
                    coincidence[(c, k)] += pairs / (m - 1)
    totals: dict[str, float] = defaultdict(float)
    for (c, _k), value in coincidence.items():
        totals[c] += value
    n = sum(totals.values())
    if n < 2:
        return None
    disagreement = sum(value for (c, k), value in coincidence.items() if c != k)
    expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
    if expected == 0:
        return None
    return 1 - (n - 1) * disagreement / expected


def agreement_words(value: float | None, measure: str = "kappa") -> str:
    """What an agreement number means, in plain words."""
    if value is None:
        return "Not measurable yet: it needs at least two reviewers on the same items, giving different answers somewhere."
    if value < 0:
        return (
            "Reviewers agree less often than chance would make them: they judge these items very differently."
        )
    if measure == "alpha":
        if value >= 0.8:
            return "Reviewers agree well: their verdicts can be relied on."
        if value >= 0.667:
            return "Reviewers mostly agree: good enough for tentative conclusions."
        if value >= 0.4:
            return "Reviewers agree only partly: read the items they disagree on before drawing conclusions."
        return "Reviewers hardly agree beyond chance: the instructions or the items may be unclear."
    if value > 0.8:
        return "Reviewers agree almost perfectly."
    if value > 0.6:
        return "Reviewers agree substantially."
    if value > 0.4:
        return "Reviewers agree moderately: read the items they disagree on."
    if value > 0.2:
        return "Reviewers agree only fairly: the instructions or the items may be unclear."
    return "Reviewers hardly agree beyond chance."


@dataclass(frozen=True)
class Agreement:
    reviewers: tuple[str, ...]
    items: int  # items judged by at least two reviewers
    kappa: float | None  # Cohen's kappa, exactly two reviewers only
    alpha: float | None  # Krippendorff's alpha (nominal), any number of reviewers

    @property
    def measure(self) -> str:
        return "kappa" if len(self.reviewers) == 2 else "alpha"

    @property
    def value(self) -> float | None:
        return self.kappa if self.measure == "kappa" else self.alpha

    @property
    def words(self) -> str:
        return agreement_words(self.value, self.measure)

    def to_json(self) -> dict:
        return {
            "reviewers": list(self.reviewers),
            "items_with_two_or_more_reviewers": self.items,
            "cohen_kappa": _rounded(self.kappa),
            "krippendorff_alpha": _rounded(self.alpha),
            "in_words": self.words,
        }


def _by_item(verdicts: Iterable[Verdict]) -> dict[int, dict[str, Verdict]]:
    grouped: dict[int, dict[str, Verdict]] = defaultdict(dict)
    for verdict in verdicts:
        grouped[verdict.item][reviewer_key(verdict.reviewer)] = verdict
    return grouped


def agreement(verdicts: Sequence[Verdict]) -> Agreement:
    """Agreement on the verdicts (the four answers as categories): Cohen's kappa when exactly two
    reviewers took part, Krippendorff's alpha always."""
    names: dict[str, str] = {}
    for verdict in verdicts:
        names.setdefault(reviewer_key(verdict.reviewer), verdict.reviewer)
    grouped = _by_item(verdicts)
    units = [[v.choice for v in answers.values()] for answers in grouped.values()]
    kappa = None
    if len(names) == 2:
        a, b = names
        kappa = cohen_kappa([(g[a].choice, g[b].choice) for g in grouped.values() if a in g and b in g])
    return Agreement(
        tuple(names.values()),
        sum(len(unit) >= 2 for unit in units),
        kappa,
        krippendorff_alpha(units),
    )


@dataclass(frozen=True)
class PositionBias:
    """How often the left output won among the verdicts that preferred one side."""

    left_wins: int
    decisive: int

    @property
    def rate(self) -> float | None:
        return self.left_wins / self.decisive if self.decisive else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.left_wins, self.decisive)

    @property
    def words(self) -> str:
        if not self.decisive:
            return "No output has been preferred yet."
        low, high = self.interval
        side = (
            f"The output shown on the left won {self.left_wins} of {self.decisive} times ({self.rate:.0%})."
        )
        if low > 0.5:
            return side + " Reviewers seem to favour the left side."
        if high < 0.5:
            return side + " Reviewers seem to favour the right side."
        return side + " No sign that the side an output is shown on sways reviewers."

    def to_json(self) -> dict:
        return {
            "left_wins": self.left_wins,
            "decisive_verdicts": self.decisive,
            "left_win_rate": _rounded(self.rate),
            "interval": [round(x, 4) for x in self.interval] if self.decisive else None,
        }


def position_bias(verdicts: Iterable[Verdict]) -> PositionBias:
    sides = [v.left_won for v in verdicts if v.left_won is not None]
    return PositionBias(sum(sides), len(sides))


def per_reviewer(verdicts: Sequence[Verdict], names: Sequence[str]) -> list[dict]:
    """One row per reviewer: verdicts given, the first variant's win rate, "both unacceptable"
    and how often the left output won."""
    grouped: dict[str, list[Verdict]] = defaultdict(list)
    shown: dict[str, str] = {}
    for verdict in verdicts:
        key = reviewer_key(verdict.reviewer)
        grouped[key].append(verdict)
        shown.setdefault(key, verdict.reviewer)
    rows = []
    for key, given in grouped.items():
        first, _ = win_rates(given, names)
        bias = position_bias(given)
        rows.append(
            {
                "reviewer": shown[key],
                "verdicts": len(given),
                "first_wins": first.wins,
                "second_wins": first.losses,
                "same": first.ties,
                "both_unacceptable": first.neither,
                "first_win_rate": _rounded(first.rate),
                "left_win_rate": _rounded(bias.rate),
            }
        )
    return sorted(rows, key=lambda row: reviewer_key(row["reviewer"]))


def majority(answers: Iterable[str]) -> str | None:
    """The answer most reviewers gave, None on a tie for first place."""
    ranked = Counter(answers).most_common()
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


def disagreements(verdicts: Sequence[Verdict]) -> list[int]:
    """Items whose reviewers gave different answers, the most split first."""
    grouped = _by_item(verdicts)
    split = [
        (item, len({v.choice for v in answers.values()}))
        for item, answers in grouped.items()
        if len({v.choice for v in answers.values()}) > 1
    ]
    return [item for item, _ in sorted(split, key=lambda pair: (-pair[1], pair[0]))]


def check_conflicts(verdicts: Sequence[Verdict], items: Iterable[ReviewItem]) -> list[int]:
    """Items where the automatic checks passed one output and failed the other, but the reviewers'
    majority preferred the failing one or found both unacceptable."""
    grouped = _by_item(verdicts)
    found = []
    for item in items:
        first, second = item.passed
        if first is None or second is None or first == second or item.id not in grouped:
            continue
        checked = "first" if first else "second"
        verdict = majority(v.choice for v in grouped[item.id].values())
        if verdict in ({"first", "second"} - {checked}) | {"neither"}:
            found.append(item.id)
    return found


@dataclass(frozen=True)
class ReviewSummary:
    """Everything the results page and the exports show, computed once."""

    names: tuple[str, str]
    items: int
    verdicts: int
    wins: tuple[WinRate, WinRate]
    agreement: Agreement
    bias: PositionBias
    reviewers: list[dict]
    disagreements: list[int]
    conflicts: list[int]

    def to_json(self) -> dict:
        return {
            "variants": list(self.names),
            "items": self.items,
            "verdicts": self.verdicts,
            "win_rates": [w.to_json() for w in self.wins],
            "agreement": self.agreement.to_json(),
            "position_bias": self.bias.to_json(),
            "reviewers": self.reviewers,
            "disagreements": self.disagreements,
            "check_conflicts": self.conflicts,
        }


def summarize_review(
    names: Sequence[str], items: Sequence[ReviewItem], verdicts: Sequence[Verdict]
) -> ReviewSummary:
    names = (str(names[0]), str(names[1]))
    return ReviewSummary(
        names,
        len(items),
        len(verdicts),
        win_rates(verdicts, names),
        agreement(verdicts),
        position_bias(verdicts),
        per_reviewer(verdicts, names),
        disagreements(verdicts),
        check_conflicts(verdicts, items),
    )


# ---- exports ------------------------------------------------------------------------------------
def _verdict_rows(
    names: Sequence[str], items: Sequence[ReviewItem], verdicts: Sequence[Verdict]
) -> list[dict]:
    by_id = {item.id: item for item in items}
    rows = []
    for verdict in sorted(
        verdicts, key=lambda v: (by_id[v.item].position if v.item in by_id else 0, reviewer_key(v.reviewer))
    ):
        item = by_id.get(verdict.item)
        rows.append(
            {
                "item": item.position + 1 if item else None,
                "row": item.row + 1 if item and item.row is not None else None,
                "reviewer": verdict.reviewer,
                "verdict": verdict.choice,
                "preferred": {"first": names[0], "second": names[1]}.get(verdict.choice, ""),
                "shown_left": names[verdict.left],
                "clicked": verdict.button,
                "reason": verdict.reason,
                "inputs": json.dumps(item.inputs, ensure_ascii=False) if item else "",
            }
        )
    return rows


def _safe_cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text (never runs it as a formula)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export_csv(names: Sequence[str], items: Sequence[ReviewItem], verdicts: Sequence[Verdict]) -> str:
    """One line per verdict."""
    rows = _verdict_rows(names, items, verdicts)
    out = io.StringIO()
    columns = ["item", "row", "reviewer", "verdict", "preferred", "shown_left", "clicked", "reason", "inputs"]
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _safe_cell(value) for key, value in row.items()})
    return out.getvalue()


def export_jsonl(
    name: str, names: Sequence[str], items: Sequence[ReviewItem], verdicts: Sequence[Verdict]
) -> str:
    """A summary line, then one line per verdict."""
    summary = {"kind": "summary", "review": name, **summarize_review(names, items, verdicts).to_json()}
    lines = [json.dumps(summary, ensure_ascii=False)]
    lines += [
        json.dumps({"kind": "verdict", **row}, ensure_ascii=False)
        for row in _verdict_rows(names, items, verdicts)
    ]
    return "\n".join(lines) + "\n"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _number(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.2f}"


def report_html(
    name: str,
    names: Sequence[str],
    items: Sequence[ReviewItem],
    verdicts: Sequence[Verdict],
    instructions: str = "",
) -> str:
    """A self-contained HTML report (no scripts, no outside files)."""
    summary = summarize_review(names, items, verdicts)
    parts = _html_win_rates(name, instructions, summary)
    parts += _html_agreement(names, summary)
    parts += _html_items(names, items, verdicts, summary)
    parts.append("</table></body></html>")
    return "".join(parts)


def _html_win_rates(name: str, instructions: str, summary: ReviewSummary) -> list[str]:
    """The report's head, title and counts, and the win-rate table's rows."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{escape(name)}</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}",
        "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .5rem;"
        "vertical-align:top;text-align:left}pre{white-space:pre-wrap;margin:0;font-size:.85rem}",
        "</style></head><body>",
        f"<h1>{escape(name)}</h1>",
        f"<p>{escape(instructions)}</p>" if instructions else "",
        f"<p>{summary.items} items, {summary.verdicts} verdicts from {len(summary.reviewers)} reviewer(s).</p>",
        "<h2>Win rates</h2><table><tr><th>Variant</th><th>Wins</th><th>About the same</th><th>Losses</th>"
        "<th>Win rate (ties count half)</th><th>95% interval (Wilson)</th><th>Both unacceptable</th></tr>",
    ]
    for w in summary.wins:
        low, high = w.interval
        parts.append(
            f"<tr><td>{escape(w.name)}</td><td>{w.wins}</td><td>{w.ties}</td><td>{w.losses}</td>"
            f"<td>{_percent(w.rate)}</td><td>{_percent(low)} – {_percent(high)}</td>"
            f"<td>{w.neither} ({_percent(w.neither_rate)})</td></tr>"
        )
    return parts


def _html_agreement(names: Sequence[str], summary: ReviewSummary) -> list[str]:
    """Agreement, position bias and the per-reviewer table."""
    a = summary.agreement
    parts = [
        "</table><h2>Agreement</h2>",
        f"<p>Cohen's kappa: {_number(a.kappa)} · Krippendorff's alpha: {_number(a.alpha)} "
        f"({a.items} items judged by two or more reviewers). {escape(a.words)}</p>",
        f"<h2>Position bias</h2><p>{escape(summary.bias.words)}</p>",
        "<h2>Reviewers</h2><table><tr><th>Reviewer</th><th>Verdicts</th>"
        f"<th>{escape(names[0])} wins</th><th>{escape(names[1])} wins</th><th>About the same</th>"
        "<th>Both unacceptable</th><th>Left won</th></tr>",
    ]
    for row in summary.reviewers:
        parts.append(
            f"<tr><td>{escape(row['reviewer'])}</td><td>{row['verdicts']}</td><td>{row['first_wins']}</td>"
            f"<td>{row['second_wins']}</td><td>{row['same']}</td><td>{row['both_unacceptable']}</td>"
            f"<td>{_percent(row['left_win_rate'])}</td></tr>"
        )
    parts.append("</table>")
    return parts


def _html_items(
    names: Sequence[str], items: Sequence[ReviewItem], verdicts: Sequence[Verdict], summary: ReviewSummary
) -> list[str]:
    """The flagged items' numbers, then every item (flagged first) with its outputs and verdicts."""
    by_id = {item.id: item for item in items}
    grouped = _by_item(verdicts)
    flagged = [
        ("Reviewers disagree", summary.disagreements),
        ("Reviewers and the checks disagree", summary.conflicts),
    ]
    listed = list(dict.fromkeys(summary.disagreements + summary.conflicts))
    rest = sorted((i.id for i in items if i.id not in set(listed)), key=lambda i: by_id[i].position)
    parts = ["<h2>Items</h2>"]
    for title, ids in flagged:
        parts.append(
            f"<p><b>{escape(title)}:</b> {', '.join(str(by_id[i].position + 1) for i in ids if i in by_id) or 'none'}</p>"
        )
    parts.append(
        f"<table><tr><th>Item</th><th>Inputs</th><th>{escape(names[0])}</th><th>{escape(names[1])}</th><th>Verdicts</th></tr>"
    )
    for item_id in listed + rest:
        item = by_id.get(item_id)
        if item is None:
            continue
        given = "<br>".join(
            f"{escape(v.reviewer)}: {escape(CHOICE_WORDS[v.choice])}"
            + (f" — {escape(v.reason)}" if v.reason else "")
            for v in grouped.get(item_id, {}).values()
        )
        inputs = "<br>".join(f"<b>{escape(k)}</b>: {escape(val)}" for k, val in item.inputs.items())
        parts.append(
            f"<tr><td>{item.position + 1}</td><td>{inputs}</td><td><pre>{escape(item.outputs[0])}</pre></td>"
            f"<td><pre>{escape(item.outputs[1])}</pre></td><td>{given or '–'}</td></tr>"
        )
    return parts
