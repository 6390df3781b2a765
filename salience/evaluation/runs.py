"""Evaluate prompt variants across a table of inputs: datasets, checks, pass rates, flips, and
which template part drove each row's output.

Nothing here imports Streamlit or TensorFlow; the model is only touched through
``generate_outputs`` and ``part_shares``. Every user mistake is an ``InputError`` whose message
names the row, column, variant or check.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import regex

from salience.attribution.methods import DEFAULT_METHOD
from salience.core.errors import CancelledError, InputError
from salience.core.text import excerpt, json_lines
from salience.prompts.segments import MAX_REGEX_LENGTH, REGEX_TIMEOUT_SECONDS
from salience.prompts.templates import RenderedPrompt, TemplateError, parse_template, render
from salience.prompts.variant import Variant
from salience.prompts.variant_comparison import TargetChoice, resolve_target

MAX_ROWS = 2_000
MAX_FILE_BYTES = 50_000_000
MAX_CELL_CHARS = 20_000
MAX_VARIANTS = 4
FAST_METHOD = DEFAULT_METHOD  # per-row shares: the page's first colours
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHECK_KINDS = ("contains", "not-contains", "starts-with", "equals", "regex", "expected", "max-words", "json")
CHECK_WORDS = {
    "contains": "contains",
    "not-contains": "does not contain",
    "starts-with": "starts with",
    "equals": "equals",
    "regex": "matches",
    "expected": "contains the row's expected value",
    "max-words": "has at most N words",
    "json": "is valid JSON",
}


# ---- datasets ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dataset:
    """A table of text cells: ``rows[i][column]``; rows are numbered from 1 in messages."""

    columns: tuple[str, ...]
    rows: tuple[dict[str, str], ...]

    def __post_init__(self) -> None:
        if not self.columns:
            raise InputError("The data has no columns: the first line must name them (e.g. menu_item).")
        if not self.rows:
            raise InputError("The data has a header but no rows; add at least one row of values.")
        if len(self.rows) > MAX_ROWS:
            raise InputError(
                f"The data has {len(self.rows):,} rows; at most {MAX_ROWS:,} run at once. Split it into "
                f"files of {MAX_ROWS:,} rows or fewer (e.g. `split -l {MAX_ROWS}` after the header) "
                "and evaluate each."
            )
        for number, row in enumerate(self.rows, start=1):
            for column, value in row.items():
                if len(value) > MAX_CELL_CHARS:
                    raise InputError(
                        f"Row {number}, column '{column}': the value has {len(value):,} characters; "
                        f"the limit is {MAX_CELL_CHARS:,} (a prompt must fit the model's context). "
                        "Shorten it."
                    )

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, object]]) -> Dataset:
        columns: dict[str, None] = {}
        for record in records:
            columns.update(dict.fromkeys(str(key) for key in record))
        rows = tuple({column: _cell_text(record.get(column)) for column in columns} for record in records)
        return cls(tuple(columns), rows)

    def formula_cells(self) -> list[tuple[int, str]]:
        """(row, column) of cells that a spreadsheet would run as a formula (kept as text here)."""
        return [
            (number, column)
            for number, row in enumerate(self.rows, start=1)
            for column, value in row.items()
            if value.startswith("=")
        ]


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def decode_bytes(content: bytes, name: str = "the data") -> str:
    """UTF-8 (with or without a BOM) or UTF-16 with a BOM; anything else gets a message saying how
    to re-save it."""
    if len(content) > MAX_FILE_BYTES:
        raise InputError(
            f"{name} is larger than {MAX_FILE_BYTES // 1_000_000} MB; split it into smaller files."
        )
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return content.decode("utf-16")
        except UnicodeDecodeError:
            raise InputError(
                f"{name} starts like UTF-16 text but does not decode; save it as UTF-8."
            ) from None
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = content.count(b"\n", 0, error.start) + 1
        raise InputError(
            f"{name} is not UTF-8 text (byte 0x{content[error.start]:02X} on line {line}; it looks like "
            "Windows-1252 or Latin-1). Save it as UTF-8 (Excel: 'CSV UTF-8') and load it again."
        ) from None


def parse_csv(text: str, delimiter: str | None = None) -> Dataset:
    """A CSV (or tab-separated) table with a header line; duplicate, empty or extra columns are
    named."""
    lines = text.splitlines()
    header_line = next((line for line in lines if line.strip()), "")
    if delimiter is None:
        delimiter = (
            "\t" if "\t" in header_line else ";" if header_line.count(";") > header_line.count(",") else ","
        )
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FILE_BYTES))  # long cells get our message
    try:
        table = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)]
    except csv.Error as error:
        raise InputError(f"The CSV cannot be read ({error}); check its quotes.") from None
    table = [row for row in table if any(cell.strip() for cell in row)]
    if not table:
        raise InputError("The data is empty: the first line must name the columns.")
    header = [cell.strip() for cell in table[0]]
    seen: dict[str, int] = {}
    for index, name in enumerate(header, start=1):
        if not name:
            raise InputError(f"Column {index} of the header has no name; name it or delete the column.")
        if name in seen:
            raise InputError(f"Column '{name}' appears twice (columns {seen[name]} and {index}); rename one.")
        seen[name] = index
    rows = []
    for number, cells in enumerate(table[1:], start=1):
        if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header) :]):
            raise InputError(
                f"Row {number} has {len(cells)} cells but the header names {len(header)} columns; "
                "quote values that contain the separator."
            )
        cells = cells + [""] * (len(header) - len(cells))
        rows.append(dict(zip(header, cells)))
    return Dataset(tuple(header), tuple(rows))


def parse_jsonl_rows(text: str) -> Dataset:
    """One JSON object per line; values must be text, numbers or booleans."""
    records = []
    for line_number, record in json_lines(text):
        if not isinstance(record, dict):
            raise InputError(f"Line {line_number}: expected a JSON object with one key per column.")
        for key, value in record.items():
            if isinstance(value, dict | list):
                raise InputError(
                    f"Line {line_number}, column '{key}': nested values are not supported; use text."
                )
        records.append(record)
        if len(records) > MAX_ROWS:
            raise InputError(
                f"The data has more than {MAX_ROWS:,} rows; split it into files of {MAX_ROWS:,} rows "
                "or fewer and evaluate each."
            )
    if not records:
        raise InputError(
            'The data has no rows: each line should be a JSON object such as {"menu_item": "…"}.'
        )
    return Dataset.from_records(records)


def parse_data(content: str | bytes, name: str = "the data", kind: str | None = None) -> Dataset:
    """CSV, TSV or JSONL from a file's bytes or pasted text.

    Args:
        content: the text, or a file's bytes (UTF-8, or UTF-16 with a byte-order mark).
        name: what to call it in errors.
        kind: "csv" or "jsonl"; None: JSONL when it starts with ``{``, else CSV.

    Returns:
        The `Dataset` (columns and rows of text); `InputError` saying what to fix otherwise.

    Example:
    >>> parse_data("dish,price\\nsoup,4\\n").columns
    ('dish', 'price')
    """
    text = decode_bytes(content, name) if isinstance(content, bytes) else content
    if len(text) > MAX_FILE_BYTES:
        raise InputError(
            f"{name} is larger than {MAX_FILE_BYTES // 1_000_000} MB; split it into smaller files."
        )
    if kind is None:
        kind = "jsonl" if text.lstrip().startswith("{") else "csv"
    return parse_jsonl_rows(text) if kind == "jsonl" else parse_csv(text)


def load_data(path: str | Path) -> Dataset:
    """`parse_data` of a file, its kind told by its suffix (.csv/.tsv, .jsonl/.ndjson/.json).

    Args:
        path: the data file.

    Returns:
        The `Dataset`; `InputError` when the file is missing, unreadable or malformed.

    Example:
    >>> dataset = load_data("rows.csv")  # doctest: +SKIP
    """
    path = Path(path)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"The data file '{path}' does not exist.") from None
    except OSError as error:
        raise InputError(f"Cannot read the data file '{path}': {error.strerror}.") from None
    suffix = path.suffix.lower()
    kind = (
        "jsonl" if suffix in (".jsonl", ".ndjson", ".json") else "csv" if suffix in (".csv", ".tsv") else None
    )
    return parse_data(content, f"The data file '{path.name}'", kind)


def safe_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: values starting like a formula get a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


# ---- checks -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """One promptfoo-style assertion on an output. Text checks trim the output's leading space."""

    kind: str
    value: str = ""
    ignore_case: bool = False

    def __post_init__(self) -> None:
        if self.kind not in CHECK_KINDS:
            raise InputError(f"Unknown check '{self.kind}'; choose one of: {', '.join(CHECK_KINDS)}.")
        if self.kind in ("contains", "not-contains", "starts-with", "equals") and not self.value:
            raise InputError(f"The check '{self.kind}' needs a value, e.g. {self.kind}:Avoid.")
        if self.kind == "max-words" and not self.value.strip().isdigit():
            raise InputError(f"The check 'max-words' needs a whole number, got '{self.value}'.")
        if self.kind == "regex":
            self._pattern()

    def _pattern(self):
        if not self.value:
            raise InputError("The regex check is empty; type a pattern such as ^Avoid.")
        if len(self.value) > MAX_REGEX_LENGTH:
            raise InputError(f"The regex check is longer than {MAX_REGEX_LENGTH} characters; shorten it.")
        flags = regex.MULTILINE | (regex.IGNORECASE if self.ignore_case else 0)
        try:
            return regex.compile(self.value, flags)
        except regex.error as error:
            raise InputError(
                f"The regex check '{excerpt(self.value)}' is not a valid regular expression: {error}."
            ) from None

    @property
    def label(self) -> str:
        words = CHECK_WORDS[self.kind]
        case = (
            " (any case)" if self.ignore_case and self.kind not in ("max-words", "json", "expected") else ""
        )
        if self.kind == "max-words":
            return f"has at most {self.value.strip()} words"
        if self.kind in ("json", "expected"):
            return words
        return f"{words} “{excerpt(self.value, 32)}”{case}"

    def run(self, output: str, expected: str | None = None) -> tuple[bool, str]:
        """(passed, why) for one output; never raises for a slow regex (it fails, saying so)."""
        text = output.strip()
        fold = (lambda s: s.casefold()) if self.ignore_case else (lambda s: s)
        if self.kind == "contains":
            return fold(self.value) in fold(text), ""
        if self.kind == "not-contains":
            return fold(self.value) not in fold(text), ""
        if self.kind == "starts-with":
            return fold(text).startswith(fold(self.value)), ""
        if self.kind == "equals":
            return fold(text) == fold(self.value.strip()), ""
        if self.kind == "max-words":
            count = len(text.split())
            return count <= int(self.value), f"{count} words"
        if self.kind == "json":
            try:
                json.loads(text)
            except ValueError as error:
                return False, f"not JSON: {error}"
            return True, ""
        if self.kind == "expected":
            if expected is None or not expected.strip():
                return False, "this row has no expected value"
            choices = [choice.strip().casefold() for choice in expected.split("|") if choice.strip()]
            return any(choice in text.casefold() for choice in choices), ""
        try:
            return self._pattern().search(text, timeout=REGEX_TIMEOUT_SECONDS) is not None, ""
        except TimeoutError:
            return False, f"the pattern took longer than {REGEX_TIMEOUT_SECONDS:g} s on this output"

    def to_json(self) -> dict:
        return {"kind": self.kind, "value": self.value, "ignore_case": self.ignore_case}

    @classmethod
    def from_json(cls, data: Mapping) -> Check:
        return cls(str(data["kind"]), str(data.get("value", "")), bool(data.get("ignore_case", False)))


def parse_check(spec: str) -> Check:
    """A check as written on the command line.

    Args:
        spec: ``KIND:VALUE`` (a kind of `CHECK_KINDS`); ``KIND/i:VALUE`` ignores case; ``json``
            has no value.

    Returns:
        The `Check`; `InputError` naming the kinds when ``spec`` is not one.

    Example:
    >>> parse_check("contains/i:avoid").label
    'contains “avoid” (any case)'
    """
    kind, sep, value = spec.partition(":")
    kind = kind.strip().lower()
    ignore_case = kind.endswith("/i")
    kind = kind.removesuffix("/i")
    if kind in ("json", "expected") and not value:
        return Check(kind, "", ignore_case)
    if not sep:
        raise InputError(f"A check must look like KIND:VALUE (e.g. contains:Avoid), got '{spec}'.")
    return Check(kind, value, ignore_case)


# ---- variants and plans -----------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """What will run, checked before the model is touched; ``notes`` are warnings worth showing."""

    variants: tuple[Variant, ...]  # each variant's own values fill variables the data has no column for
    dataset: Dataset
    checks: tuple[Check, ...]
    expected_column: str | None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # missing columns filled by a variant's own values

    @property
    def size(self) -> int:
        return len(self.variants) * len(self.dataset.rows)

    def values(self, row: int, variant: int) -> dict[str, str]:
        """The variable values of a row (0-based) for a variant: the row's cells over its own values."""
        chosen = self.variants[variant]
        names = parse_template(chosen.template).variables
        cells = self.dataset.rows[row]
        return {name: cells[name] if name in cells else chosen.variables.get(name, "") for name in names}

    def rendered(self, row: int, variant: int) -> RenderedPrompt:
        return render(parse_template(self.variants[variant].template), self.values(row, variant))

    def expected(self, row: int) -> str | None:
        return self.dataset.rows[row].get(self.expected_column) if self.expected_column else None


def _rows_phrase(numbers: Sequence[int], limit: int = 8) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    more = f" and {len(numbers) - limit} more" if len(numbers) > limit else ""
    return ("row " if len(numbers) == 1 else "rows ") + shown + more


def plan_evaluation(
    variants: Sequence[Variant],
    dataset: Dataset,
    checks: Sequence[Check] = (),
    expected_column: str | None = None,
) -> Plan:
    """Validate everything that can be validated without the model; errors name what to fix.

    Args:
        variants: the prompt variants to compare (templates with default values).
        dataset: the table of inputs (`parse_data`, `load_data`).
        checks: the checks each output is scored with (`parse_check`).
        expected_column: the column holding each row's expected output, if any.

    Returns:
        A `Plan`: the rendered prompts per (row, variant), with warnings and notes.

    Example:
    >>> plan = plan_evaluation([Variant("A", "Describe {dish}.")], parse_data("dish\\nsoup\\n"))
    >>> plan.rendered(0, 0).text
    'Describe soup.'
    """
    _check_variant_names(variants)
    used: set[str] = set()
    warnings: list[str] = []
    for variant in variants:
        from_data, own = _variant_columns(variant, dataset)
        if own:
            listed = ", ".join(repr(n) for n in own)
            warnings.append(
                f"The data has no column {listed}: variant '{variant.name}' uses its own value there "
                "in every row. Add the column if it should vary."
            )
        used.update(from_data)
    notes = _expected_column_notes(dataset, expected_column, checks)
    if expected_column:
        used.add(expected_column)
    notes += _data_notes(dataset, used, expected_column)
    checks = tuple(checks)
    if expected_column and not any(check.kind == "expected" for check in checks):
        checks = (*checks, Check("expected"))
    if not checks:
        notes.append("No checks: every output passes. Add a check (e.g. contains:Avoid) to score outputs.")
    return Plan(tuple(variants), dataset, checks, expected_column, tuple(notes), tuple(warnings))


def _check_variant_names(variants: Sequence[Variant]) -> None:
    """One to `MAX_VARIANTS` variants, each with a name of its own."""
    if not variants:
        raise InputError("Choose at least one template variant to evaluate.")
    if len(variants) > MAX_VARIANTS:
        raise InputError(f"Evaluate at most {MAX_VARIANTS} variants at once; you chose {len(variants)}.")
    names = [variant.name for variant in variants]
    for name in names:
        if not name.strip():
            raise InputError("Every variant needs a name.")
        if names.count(name) > 1:
            raise InputError(f"Two variants are named '{name}'; rename one.")


def _variant_columns(variant: Variant, dataset: Dataset) -> tuple[list[str], list[str]]:
    """A variant's variables taken from the data and those it fills itself; errors when the
    template is broken, has no variables, or takes nothing from the data."""
    columns = set(dataset.columns)
    try:
        parsed = parse_template(variant.template)
    except TemplateError as error:
        raise InputError(f"Variant '{variant.name}': {error}") from None
    if not parsed.variables:
        raise InputError(
            f"Variant '{variant.name}' has no {{variables}}: every row would get the same prompt. "
            "Put a field such as {menu_item} where the data's values go."
        )
    missing = [name for name in parsed.variables if name not in columns and name not in variant.variables]
    if missing:
        listed = ", ".join(f"'{name}'" for name in missing)
        raise InputError(
            f"Variant '{variant.name}' needs the column{'s' if len(missing) > 1 else ''} {listed}, which the "
            f"data lacks (its columns: {', '.join(dataset.columns)}). Add or rename a column."
        )
    from_data = [name for name in parsed.variables if name in columns]
    if not from_data:
        raise InputError(
            f"Variant '{variant.name}' takes none of its variables from the data, so every row would get "
            f"the same prompt; add a column named {' or '.join(repr(n) for n in parsed.variables)}."
        )
    return from_data, [name for name in parsed.variables if name not in columns]


def _expected_column_notes(
    dataset: Dataset, expected_column: str | None, checks: Sequence[Check]
) -> list[str]:
    """The expected-answer column exists (when chosen, or when a check needs it); a note on its blank rows."""
    notes: list[str] = []
    if expected_column:
        if expected_column not in dataset.columns:
            raise InputError(
                f"The expected-answer column '{expected_column}' is not in the data "
                f"(its columns: {', '.join(dataset.columns)})."
            )
        blank = [n for n, row in enumerate(dataset.rows, start=1) if not row[expected_column].strip()]
        if blank:
            notes.append(
                f"The expected column '{expected_column}' is empty in {_rows_phrase(blank)}; those fail the expected check."
            )
    elif any(check.kind == "expected" for check in checks):
        raise InputError(
            "The check 'contains the row's expected value' needs an expected-answer column; choose one."
        )
    return notes


def _data_notes(dataset: Dataset, used: set[str], expected_column: str | None) -> list[str]:
    """Notes on the data: unused columns, blank cells in used ones, cells that look like formulas."""
    notes: list[str] = []
    extra = [column for column in dataset.columns if column not in used]
    if extra:
        notes.append(
            f"Column{'s' if len(extra) > 1 else ''} {', '.join(repr(c) for c in extra)} "
            f"{'are' if len(extra) > 1 else 'is'} not used by any variant and will be ignored."
        )
    for column in sorted(used - {expected_column}, key=dataset.columns.index):
        blank = [n for n, row in enumerate(dataset.rows, start=1) if not row[column].strip()]
        if blank:
            notes.append(
                f"Column '{column}' is empty in {_rows_phrase(blank)}; those prompts get an empty value."
            )
    formulas = [(n, c) for n, c in dataset.formula_cells() if c in used]
    if formulas:
        where = ", ".join(f"row {n} '{c}'" for n, c in formulas[:5])
        notes.append(f"Cells starting with '=' ({where}) are used as plain text, never as formulas.")
    return notes


# ---- results ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CellResult:
    """One row through one variant: the output, each check's verdict, and (optionally) shares."""

    row: int  # 0-based
    variant: int  # 0-based
    output: str
    checks: tuple[bool, ...]
    details: tuple[str, ...] = ()
    seconds: float = 0.0
    shares: dict[str, float] | None = None
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(self.checks)

    def to_json(self) -> dict:
        return {
            "row": self.row,
            "variant": self.variant,
            "output": self.output,
            "checks": list(self.checks),
            "details": list(self.details),
            "seconds": round(self.seconds, 4),
            "shares": self.shares,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> CellResult:
        return cls(
            int(data["row"]),
            int(data["variant"]),
            str(data["output"]),
            tuple(bool(x) for x in data.get("checks", ())),
            tuple(str(x) for x in data.get("details", ())),
            float(data.get("seconds", 0.0)),
            data.get("shares"),
            data.get("error"),
        )


def score(plan: Plan, row: int, variant: int, output: str, seconds: float = 0.0) -> CellResult:
    verdicts = [check.run(output, plan.expected(row)) for check in plan.checks]
    return CellResult(
        row, variant, output, tuple(v[0] for v in verdicts), tuple(v[1] for v in verdicts), seconds
    )


def wilson_interval(passed: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval for a pass rate (95% by default); (0, 1) for no rows."""
    if total <= 0:
        return 0.0, 1.0
    p = passed / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class VariantSummary:
    name: str
    passed: int
    total: int
    interval: tuple[float, float]
    check_passes: tuple[int, ...]

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0

    def describe(self) -> str:
        low, high = self.interval
        return f"{self.name}: {self.passed}/{self.total} pass ({self.rate:.0%}, 95% CI {low:.0%}–{high:.0%})"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "passed": self.passed,
            "total": self.total,
            "pass_rate": round(self.rate, 4),
            "interval": [round(self.interval[0], 4), round(self.interval[1], 4)],
            "check_passes": list(self.check_passes),
        }


def summarize(plan: Plan, results: Iterable[CellResult]) -> list[VariantSummary]:
    """Each variant's pass rate over the cells run so far.

    Args:
        plan: the evaluation's plan.
        results: the `CellResult` values so far (any order).

    Returns:
        One `VariantSummary` per variant, in the plan's order (passed, total, rate, Wilson interval).

    Example:
    >>> [s.describe() for s in summarize(plan, results)]  # doctest: +SKIP
    """
    by_variant: dict[int, list[CellResult]] = {i: [] for i in range(len(plan.variants))}
    for result in results:
        by_variant[result.variant].append(result)
    summaries = []
    for index, variant in enumerate(plan.variants):
        cells = by_variant[index]
        passed = sum(cell.passed for cell in cells)
        check_passes = tuple(
            sum(cell.checks[i] for cell in cells if cell.error is None) for i in range(len(plan.checks))
        )
        summaries.append(
            VariantSummary(
                variant.name, passed, len(cells), wilson_interval(passed, len(cells)), check_passes
            )
        )
    return summaries


@dataclass(frozen=True)
class Flip:
    """A row that passes in one variant and fails in the other (``a`` is the baseline)."""

    row: int
    a: int
    b: int
    passes_in: int  # the variant index where it passes

    def describe(self, plan: Plan) -> str:
        fails_in = self.b if self.passes_in == self.a else self.a
        return (
            f"row {self.row + 1}: passes in {plan.variants[self.passes_in].name}, "
            f"fails in {plan.variants[fails_in].name}"
        )

    def to_json(self, plan: Plan) -> dict:
        return {
            "row": self.row + 1,
            "a": plan.variants[self.a].name,
            "b": plan.variants[self.b].name,
            "passes_in": plan.variants[self.passes_in].name,
            "broke": self.passes_in == self.a,
        }


def flips(plan: Plan, results: Iterable[CellResult], baseline: int = 0) -> list[Flip]:
    """Rows whose verdict differs between the baseline and each other variant: broken ones first."""
    verdict = {(cell.row, cell.variant): cell.passed for cell in results}
    found = []
    for other in range(len(plan.variants)):
        if other == baseline:
            continue
        for row in range(len(plan.dataset.rows)):
            a, b = verdict.get((row, baseline)), verdict.get((row, other))
            if a is None or b is None or a == b:
                continue
            found.append(Flip(row, baseline, other, baseline if a else other))
    found.sort(key=lambda flip: (flip.passes_in != flip.a, flip.b, flip.row))
    return found


def row_order(plan: Plan, results: Iterable[CellResult]) -> list[int]:
    """Row indices with flipped rows first, then rows that fail somewhere, then the rest."""
    results = list(results)
    flipped = {flip.row for flip in flips(plan, results)}
    failing = {cell.row for cell in results if not cell.passed}
    return sorted(range(len(plan.dataset.rows)), key=lambda r: (r not in flipped, r not in failing, r))


# ---- the model --------------------------------------------------------------------------------
def _replicas(model) -> int:
    """How many replicas serve ``model`` (an engine's client says; a model in this process is one)."""
    return max(1, int(getattr(model, "replicas", 1) or 1))


def batching_note(precision: str) -> str:
    """What the batch size does at ``precision`` (the Evaluate page says it under the settings)."""
    from salience.model.batch_generation import batches_exactly

    if batches_exactly(precision):
        return (
            f"{precision}: rows are generated a batch at a time, and each row's output is the same at "
            "any batch size as the workbench's for its prompt."
        )
    return (
        f"{precision}: rows are generated one at a time, so each row's output is the workbench's for its "
        "prompt (in batches, bfloat16 changed some rows' outputs). For batches, pick float32 as the "
        "compute precision under Advanced in the sidebar: the same outputs at any batch size, and "
        "about twice as fast here."
    )


def unserved_precision(model, precision: str | None) -> str | None:
    """Why ``model`` cannot go on with an evaluation recorded at ``precision`` (None: it can).
    Its rows are never generated at another precision: that would change their outputs."""
    offered = tuple(getattr(model, "precisions", ()) or ())
    if not precision or not offered or precision in offered:
        return None
    return (
        f"This evaluation runs at {precision}, which the model in use does not serve (it serves "
        f"{' and '.join(offered)}); its finished rows are kept. Continue it with a model or engine "
        f"that serves {precision}, or start a new evaluation."
    )


def rows_per_chunk(model, batch_size: int) -> int:
    """Rows an evaluation runs together: ``batch_size`` per replica, so an engine's client sends
    one batch to every replica at once (in this process, ``batch_size``)."""
    return max(1, int(batch_size)) * _replicas(model)


def generate_outputs(
    model,
    prompts: Sequence[str],
    settings,
    batch_size: int = 8,
    cancelled: Callable[[], bool] | None = None,
    precision: str | None = None,
) -> list:
    """Generations for ``prompts`` in order, ``batch_size`` at a time when the model can batch
    (an engine's client spreads those batches over its replicas), at ``precision`` (None: the
    model's). Each is the workbench's output for its prompt whatever the batch size (in
    bfloat16 `generate_batch` decodes the rows one at a time). Once ``cancelled()`` says so,
    between two decoding steps, it stops with `CancelledError`."""
    batched = getattr(model, "generate_batch", None)
    if batched is not None and (batch_size > 1 or _replicas(model) > 1) and len(prompts) > 1:
        generations = list(
            batched(list(prompts), settings, precision, batch_size=batch_size, cancelled=cancelled)
        )
    else:
        generations = []
        for prompt in prompts:
            if cancelled is None or not hasattr(model, "stream"):
                generations.append(model.generate(prompt, settings, precision))
                continue
            partial = None
            for partial in model.stream(prompt, settings, precision):  # noqa: B007 - the last one is the result
                if cancelled():
                    break
            generations.append(partial)
    if cancelled is not None and cancelled():
        raise CancelledError("The evaluation stopped: the page that ran it has closed.")
    return generations


def _row_shares(model, rendered: RenderedPrompt, output: str, target: TargetChoice):
    try:
        return part_shares(model, rendered, output, target)
    except InputError:
        return None


def part_shares(
    model, rendered: RenderedPrompt, output: str, target: TargetChoice, method: str = FAST_METHOD
) -> dict[str, float] | None:
    """Each template part's share of the salience for the target in this output (the page's first
    colours: the Deletion estimate over the template's parts); None when there is nothing to explain
    (empty output, empty reference)."""
    return _template_shares(model, rendered, output, target, method)


def _template_shares(
    model, rendered: RenderedPrompt, output: str, target: TargetChoice, method: str, cancelled=None
) -> dict[str, float] | None:
    """Each template part's share by ``method`` for the target in ``output`` (None: nothing to explain)."""
    resolved = resolve_target(target, rendered.text, output)
    if resolved is None or not resolved.target.strip():
        return None
    result = model.salience(
        rendered.text,
        resolved.target,
        char_span=resolved.span,
        methods=(method,),
        segments=_slot_spans(model, rendered, resolved.target),
        cancelled=cancelled,
    )
    return _shares(result, rendered, method)


def _slot_spans(model, rendered: RenderedPrompt, target: str) -> list[tuple[int, int]]:
    """Token spans of the template's parts with text, before the target (what Deletion removes)."""
    from salience.prompts.segments import make_segments

    tokens, _ = model.tokenize_pair(rendered.text, target)
    segments = make_segments(
        rendered.text + target, tokens.offsets, "slots", len(rendered.text), rendered.slots
    )
    return [
        (seg.token_start, seg.token_end)
        for seg in segments
        if not seg.in_target and seg.token_start >= 1 and seg.token_end > seg.token_start and seg.text.strip()
    ]


def deletion_shares(
    model,
    rendered: RenderedPrompt,
    output: str,
    target: TargetChoice,
    cancelled: Callable[[], bool] | None = None,
) -> dict[str, float] | None:
    """Each template part's share by Deletion (each part deleted in turn): the slower check of the
    fast method's shares for one row."""
    from salience.attribution.methods import DELETION

    return _template_shares(model, rendered, output, target, DELETION, cancelled)


def _shares(result, rendered: RenderedPrompt, method: str) -> dict[str, float]:
    from salience.report.views import slot_table

    shares: dict[str, float] = {}
    for slot in slot_table(result, rendered, method):
        if not slot.text.strip() and slot.kind == "fixed":
            continue
        label = slot.label or slot.name
        key, n = label, 1
        while key in shares:
            n += 1
            key = f"{label} ({n})"
        shares[key] = round(slot.share, 5)
    return shares


def run_evaluation(
    plan: Plan,
    model,
    settings,
    *,
    done: Iterable[tuple[int, int]] = (),
    batch_size: int = 8,
    target: TargetChoice | None = None,
    cancelled: Callable[[], bool] | None = None,
    precision: str | None = None,
) -> Iterator[CellResult]:
    """Yield a CellResult for every (row, variant) not in ``done``, in batches; a row whose prompt
    the model rejects (too long) gets an error result instead of stopping the run.

    Args:
        plan: the validated variants, rows and checks (`plan_evaluation`).
        model: a `LanguageModel` or the engine's `RemoteModel` (any `EngineCalls`).
        settings: the `GenerationSettings` every cell is generated with.
        done: (row, variant) cells already run (a resumed run skips them).
        batch_size: rows decoded together.
        target: which part of each output the "why" shares explain (None: no shares).
        cancelled: polled between batches; True ends the run after the current batch.
        precision: the compute precision of every cell (None: the model's). One the model does
            not serve stops the run with its `InputError` before anything is generated.

    Returns:
        An iterator of `CellResult`, one per cell as it finishes (save each as it comes).

    Example:
        >>> plan = plan_evaluation([variant], parse_data("name\\nAda\\n"), [parse_check("contains:Ada")])  # doctest: +SKIP
        >>> results = list(run_evaluation(plan, model, GenerationSettings(max_new_tokens=16)))  # doctest: +SKIP
    """
    if precision is not None and hasattr(model, "check_precision"):
        model.check_precision(precision)
    skip = set(done)
    pending = [
        (r, v) for v in range(len(plan.variants)) for r in range(len(plan.dataset.rows)) if (r, v) not in skip
    ]
    batch_size = max(1, int(batch_size))
    size = rows_per_chunk(model, batch_size)
    for start in range(0, len(pending), size):
        if cancelled is not None and cancelled():
            return
        chunk = pending[start : start + size]
        rendered = [plan.rendered(r, v) for r, v in chunk]
        began = time.perf_counter()
        generations = _chunk_generations(model, rendered, settings, batch_size, cancelled, precision)
        if generations is None:
            return
        each = (time.perf_counter() - began) / max(1, len(chunk))
        explained: dict[int, dict[str, float] | None] = {}
        if target is not None and _replicas(model) > 1:  # explain the chunk on every replica at once
            explained = _explain_on_replicas(model, rendered, generations, target)
        stopped = yield from _chunk_cells(
            plan, model, chunk, rendered, generations, each, target, cancelled, explained
        )
        if stopped:
            return


def _chunk_generations(model, rendered, settings, batch_size, cancelled, precision) -> list | None:
    """One chunk's outputs, batched; when the batch is rejected, each prompt alone (a rejected
    prompt's `InputError` in its place). None when the run is cancelled."""
    try:
        return generate_outputs(model, [p.text for p in rendered], settings, batch_size, cancelled, precision)
    except CancelledError:
        return None
    except InputError:
        generations = []
        for prompt in rendered:
            try:
                generations.append(model.generate(prompt.text, settings, precision))
            except InputError as error:
                generations.append(error)
        return generations


def _explain_on_replicas(
    model, rendered, generations, target: TargetChoice
) -> dict[int, dict[str, float] | None]:
    """The "why" shares of a chunk's generated rows, one row per replica at once, by row index."""
    rows = [i for i, g in enumerate(generations) if not isinstance(g, InputError)]
    with ThreadPoolExecutor(_replicas(model), thread_name_prefix="evaluation") as pool:
        found = pool.map(
            _row_shares,
            [model] * len(rows),
            [rendered[i] for i in rows],
            [generations[i].text for i in rows],
            [target] * len(rows),
        )
        return dict(zip(rows, found))


def _chunk_cells(plan, model, chunk, rendered, generations, each, target, cancelled, explained):
    """Yield a chunk's scored cells (with shares when ``target`` is set); returns True when the run
    was cancelled part-way (the caller stops)."""
    for index, ((row, variant), prompt, generation) in enumerate(zip(chunk, rendered, generations)):
        if isinstance(generation, InputError):
            yield CellResult(
                row,
                variant,
                "",
                tuple(False for _ in plan.checks),
                (),
                each,
                None,
                f"Row {row + 1}: {generation}",
            )
            continue
        cell = score(plan, row, variant, generation.text, each)
        if target is not None:
            if cancelled is not None and cancelled():
                return True
            if index in explained:
                shares = explained[index]
            else:
                shares = _row_shares(model, prompt, generation.text, target)
            cell = CellResult(
                cell.row, cell.variant, cell.output, cell.checks, cell.details, cell.seconds, shares
            )
        yield cell
    return False


def mean_shares(results: Iterable[CellResult], variant: int, passed: bool | None = None) -> dict[str, float]:
    """Each part's share averaged over the rows that have shares (optionally only passing/failing)."""
    sums: dict[str, list[float]] = {}
    for cell in results:
        if cell.variant != variant or cell.shares is None or (passed is not None and cell.passed != passed):
            continue
        for part, share in cell.shares.items():
            sums.setdefault(part, []).append(share)
    return {part: sum(values) / len(values) for part, values in sums.items()}


def share_rows(plan: Plan, results: Iterable[CellResult]) -> list[dict]:
    """Long-format rows for a chart: one per (row, variant, part)."""
    return [
        {
            "row": cell.row + 1,
            "variant": plan.variants[cell.variant].name,
            "part": part,
            "share": share,
            "outcome": "pass" if cell.passed else "fail",
        }
        for cell in results
        if cell.shares
        for part, share in cell.shares.items()
    ]


# ---- reports ----------------------------------------------------------------------------------
def report_json(plan: Plan, results: Sequence[CellResult]) -> dict:
    """The CLI's --json object: variants, rows (values, outputs, check verdicts) and flips."""
    by_key = {(cell.row, cell.variant): cell for cell in results}
    rows = []
    for row in range(len(plan.dataset.rows)):
        entry: dict = {"row": row + 1, "values": dict(plan.dataset.rows[row]), "variants": {}}
        for index, variant in enumerate(plan.variants):
            cell = by_key.get((row, index))
            if cell is None:
                continue
            entry["variants"][variant.name] = {
                "output": cell.output,
                "passed": cell.passed,
                "checks": [
                    {"check": check.label, "passed": ok, **({"detail": why} if why else {})}
                    for check, ok, why in zip(
                        plan.checks, cell.checks, cell.details or ("",) * len(cell.checks)
                    )
                ],
                **({"error": cell.error} if cell.error else {}),
                **({"shares": cell.shares} if cell.shares else {}),
            }
        rows.append(entry)
    return {
        "variants": [summary.to_json() for summary in summarize(plan, results)],
        "checks": [check.label for check in plan.checks],
        "rows": rows,
        "flips": [flip.to_json(plan) for flip in flips(plan, results)],
    }


def export_csv(plan: Plan, results: Sequence[CellResult]) -> str:
    """One line per row and variant; cells that look like formulas are neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["row", *plan.dataset.columns, "variant", "output", "passed", *(c.label for c in plan.checks)]
    )
    for cell in sorted(results, key=lambda c: (c.row, c.variant)):
        values = plan.dataset.rows[cell.row]
        writer.writerow(
            [
                cell.row + 1,
                *(safe_cell(values[c]) for c in plan.dataset.columns),
                safe_cell(plan.variants[cell.variant].name),
                safe_cell(cell.error or cell.output),
                "pass" if cell.passed else "fail",
                *("pass" if ok else "fail" for ok in cell.checks),
            ]
        )
    return buffer.getvalue()


def export_jsonl(plan: Plan, results: Sequence[CellResult]) -> str:
    lines = []
    for cell in sorted(results, key=lambda c: (c.row, c.variant)):
        lines.append(
            json.dumps(
                {
                    "row": cell.row + 1,
                    "values": plan.dataset.rows[cell.row],
                    "variant": plan.variants[cell.variant].name,
                    "output": cell.output,
                    "passed": cell.passed,
                    "checks": dict(zip((c.label for c in plan.checks), cell.checks)),
                    **({"error": cell.error} if cell.error else {}),
                    **({"shares": cell.shares} if cell.shares else {}),
                },
                ensure_ascii=False,
            )
        )
    return "\n".join(lines) + "\n"


def text_report(plan: Plan, results: Sequence[CellResult]) -> str:
    lines = [summary.describe() for summary in summarize(plan, results)]
    found = flips(plan, results)
    if found:
        lines.append(f"{len(found)} flipped row(s):")
        lines.extend("  " + flip.describe(plan) for flip in found)
    elif len(plan.variants) > 1:
        lines.append("No row flips between the variants.")
    return "\n".join(lines)


# ---- saving and restoring ----------------------------------------------------------------------
def plan_to_json(plan: Plan) -> dict:
    return {
        # A variant's uid names Compare's widgets; a saved plan (searched as text) has no use for it.
        "variants": [{k: v for k, v in variant.to_json().items() if k != "uid"} for variant in plan.variants],
        "columns": list(plan.dataset.columns),
        "rows": [dict(row) for row in plan.dataset.rows],
        "checks": [check.to_json() for check in plan.checks],
        "expected_column": plan.expected_column,
    }


def plan_from_json(data: Mapping) -> Plan:
    """Rebuild (and re-validate) a plan saved by ``plan_to_json``; a wrong shape is an InputError."""
    try:
        columns = tuple(str(c) for c in data["columns"])
        rows = tuple({c: str(row.get(c, "")) for c in columns} for row in data["rows"])
        return plan_evaluation(
            [Variant.from_json(v) for v in data["variants"]],
            Dataset(columns, rows),
            [Check.from_json(c) for c in data["checks"]],
            data.get("expected_column"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InputError(f"A saved evaluation is malformed ({error}).") from None


def report_html(plan: Plan, results: Sequence[CellResult], title: str = "Prompt evaluation") -> str:
    """A self-contained HTML report (no scripts): summary with intervals, flips, mean part shares
    as bars (all rows, passing, failing) and every row's outputs."""
    parts = _html_head(plan, title)
    parts += _html_pass_rates(plan, results)
    parts += _html_shares(plan, results)
    parts += _html_rows(plan, results)
    return "".join(parts)


def _html_head(plan: Plan, title: str) -> list[str]:
    """The report's head, style, title and what was run, up to the pass-rate table's header."""
    from html import escape as esc

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{esc(title)}</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}",
        "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .5rem;"
        "vertical-align:top;text-align:left}pre{white-space:pre-wrap;margin:0;font-size:.85rem}",
        ".pass{background:#e6f4ea}.fail{background:#fce8e6}.bar{background:#4a7bd0;height:.8rem;display:inline-block}",
        "</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>{len(plan.dataset.rows)} rows × {len(plan.variants)} variants; checks: "
        f"{esc('; '.join(c.label for c in plan.checks) or 'none')}.</p>",
        "<h2>Pass rates</h2><table><tr><th>Variant</th><th>Passed</th><th>Rate</th><th>95% interval (Wilson)</th></tr>",
    ]
    return parts


def _html_pass_rates(plan: Plan, results: Sequence[CellResult]) -> list[str]:
    """The pass-rate rows (closing the table) and the flipped rows."""
    from html import escape as esc

    summaries = summarize(plan, results)
    found = flips(plan, results)
    parts: list[str] = []
    for s in summaries:
        parts.append(
            f"<tr><td>{esc(s.name)}</td><td>{s.passed} / {s.total}</td><td>{s.rate:.0%}</td>"
            f"<td>{s.interval[0]:.0%} – {s.interval[1]:.0%}</td></tr>"
        )
    parts.append("</table><h2>Flipped rows</h2>")
    if found:
        parts.append("<ul>" + "".join(f"<li>{esc(f.describe(plan))}</li>" for f in found) + "</ul>")
    else:
        parts.append("<p>No row flips between the variants.</p>")
    return parts


def _html_shares(plan: Plan, results: Sequence[CellResult]) -> list[str]:
    """Each variant's mean part shares as bars (all rows, passing, failing); nothing without shares."""
    from html import escape as esc

    parts: list[str] = []
    if any(c.shares for c in results):
        parts.append("<h2>Why: each template part's mean share of the salience</h2>")
        for index, variant in enumerate(plan.variants):
            groups = [("all rows", None), ("passing", True), ("failing", False)]
            means = {name: mean_shares(results, index, flag) for name, flag in groups}
            if not means["all rows"]:
                continue
            parts.append(f"<h3>{esc(variant.name)}</h3><table><tr><th>Part</th>")
            parts.extend(f"<th>{name}</th>" for name, _ in groups)
            parts.append("</tr>")
            for part in sorted(means["all rows"], key=lambda p: -means["all rows"][p]):
                cells = "".join(
                    f"<td><span class='bar' style='width:{means[name].get(part, 0) * 12:.2f}rem'></span> "
                    f"{means[name].get(part, 0):.0%}</td>"
                    if part in means[name]
                    else "<td>–</td>"
                    for name, _ in groups
                )
                parts.append(f"<tr><td>{esc(part)}</td>{cells}</tr>")
            parts.append("</table>")
    return parts


def _html_rows(plan: Plan, results: Sequence[CellResult]) -> list[str]:
    """Every row's values and each variant's verdict and output (or "not run")."""
    from html import escape as esc

    by_key = {(c.row, c.variant): c for c in results}
    parts: list[str] = []
    parts.append("<h2>Rows</h2><table><tr><th>Row</th><th>Values</th>")
    parts.extend(f"<th>{esc(v.name)}</th>" for v in plan.variants)
    parts.append("</tr>")
    for row in row_order(plan, results):
        values = "<br>".join(
            f"<b>{esc(k)}</b>: {esc(excerpt(v, 120))}" for k, v in plan.dataset.rows[row].items()
        )
        parts.append(f"<tr><td>{row + 1}</td><td>{values}</td>")
        for index in range(len(plan.variants)):
            cell = by_key.get((row, index))
            if cell is None:
                parts.append("<td>not run</td>")
                continue
            verdict = "pass" if cell.passed else "fail"
            parts.append(
                f"<td class='{verdict}'><b>{verdict}</b><pre>{esc(cell.error or cell.output)}</pre></td>"
            )
        parts.append("</tr>")
    parts.append("</table></body></html>")
    return parts
