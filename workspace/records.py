"""The records of a workspace export (JSONL), validated field by field before anything is written.

One pydantic model per ``kind``; every field is checked against what the pages and the database
accept (types, ranges, lengths, finite numbers), so a file that passes cannot crash a page later
or be refused by PostgreSQL half-way. ``parse_lines`` turns a file into records, or into one clear
line per bad row: its line number, the field and what is allowed.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from salience.core.errors import InputError
from salience.core.types import MAX_SEED, MAX_TOP_K, PAGE_MAX_NEW_TOKENS, TEMPERATURE_RANGE, TOP_P_RANGE
from workspace.results import check_result  # the result format, as the store reads it
from workspace.schema import MAX_EMAIL, MAX_SUB, UID_LENGTH
from workspace.snapshots import check_id, encode

MAX_INTEGER = 2**31 - 1  # the databases' INTEGER
MAX_ID = 2**63 - 1
MAX_REVIEWER = 200  # the notes table's reviewer column
MAX_REPORTED = 20  # bad rows listed before "... and N more"
_SUBJECT = re.compile(r"^(Input|String|List|Dictionary|Tuple|Object|Value) should")  # pydantic's wording
IDENTITY_FIELDS = ("author_sub", "author_email")  # an author's user id (OIDC sub) and e-mail
KINDS = ("template_version", "run", "salience", "comparison", "note", "review", "verdict")
_UID = re.compile(rf"[0-9a-f]{{{UID_LENGTH}}}")

# Bounds of the workbench's generation widgets: an imported run must open there.
MAX_NEW_TOKENS = PAGE_MAX_NEW_TOKENS
TEMPERATURE = TEMPERATURE_RANGE
TOP_P = TOP_P_RANGE


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


def _utc(value: datetime | None) -> datetime | None:
    """The time in UTC; a time whose UTC falls outside years 1–9999 is refused, not an overflow."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            "should be a date and time between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z "
            f"once moved to UTC, not {value.isoformat()}"
        ) from None


def _uid(value: str) -> str:
    if not _UID.fullmatch(value):
        raise ValueError(
            f"should be a record's own id: {UID_LENGTH} letters a–f and digits (as exported), "
            f"not {_shown(value)}; leave it out to import the record as a new one"
        )
    return value


def _finite_json(value: Any) -> Any:
    """Refuse NaN and infinities anywhere inside a JSON value (PostgreSQL's json refuses them)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("numbers must be finite (no NaN or Infinity)")
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return value


def _link_id(value: str) -> str:
    try:
        return check_id(value)
    except InputError:
        raise ValueError("should be a comparison link id (12 letters a–f and digits)") from None


def _snapshot_id(state: dict) -> str:
    """The id a saved comparison gets (the hash of its content)."""
    try:
        return encode({key: value for key, value in state.items() if key != "version"})[0]
    except InputError as error:
        raise ValueError(f"should be a smaller comparison ({error})") from None


def Short(length: int):  # noqa: N802 - a type alias factory
    """Text for a length-limited column: at most ``length`` characters, no NUL."""
    return Annotated[str, StringConstraints(max_length=length), AfterValidator(_no_nul)]


def Named(length: int | None = None):  # noqa: N802 - a type alias factory
    """A name: stripped, at least one character, at most ``length`` (kept whole when None), no NUL."""
    limits = StringConstraints(strip_whitespace=True, min_length=1, max_length=length)
    return Annotated[str, limits, AfterValidator(_no_nul)]


Name = Named()  # a template's name: kept whole, however long
Text20, Text40, Text200 = Short(20), Short(40), Short(200)
Label = Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(_no_nul)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Count = Annotated[int, Field(ge=0, le=MAX_INTEGER)]
Seconds = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]
When = Annotated[datetime | None, AfterValidator(_utc)]
Uid = Annotated[str, AfterValidator(_uid)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_finite_json)]


class _Record(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    created_at: When = None


class _Identified(_Record):
    """A record with a uid of its own (left out by files exported before uids existed)."""

    uid: Uid | None = None


class _Authored(_Identified):
    """A record that keeps who made it, as the sign-in gave it (left out in personal mode)."""

    author_sub: Short(MAX_SUB) | None = None
    author_email: Short(MAX_EMAIL) | None = None


class SettingsRecord(BaseModel):
    """Generation settings, within the workbench's widgets' bounds."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    max_new_tokens: Annotated[int, Field(ge=1, le=MAX_NEW_TOKENS)] = 64
    stop_sequences: list[str] = []
    temperature: Annotated[float, Field(ge=0, le=TEMPERATURE[1], allow_inf_nan=False)] = 0.0
    top_k: Annotated[int, Field(ge=0, le=MAX_TOP_K)] | None = None
    top_p: Annotated[float, Field(ge=TOP_P[0], le=TOP_P[1], allow_inf_nan=False)] | None = None
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None
    chat_template: bool = False

    @field_validator("temperature")
    @classmethod
    def _greedy_or_sampling(cls, value: float) -> float:
        if 0 < value < TEMPERATURE[0]:
            raise ValueError(f"should be 0 (greedy) or between {TEMPERATURE[0]} and {TEMPERATURE[1]}")
        return value


class VersionRecord(_Authored):
    kind: Literal["template_version"]
    id: Id
    template: Name
    text: str
    variables: dict[str, str] = {}
    author: Text200 | None = None


class RunRecord(_Authored):
    kind: Literal["run"]
    id: Id
    template_version_id: Id | None = None
    prompt: str
    variables: dict[str, str] = {}
    model: Label
    precision: Text20 = "bfloat16"
    settings: SettingsRecord = SettingsRecord()
    output: str
    stop_reason: Text40 = ""
    tokens: Count = 0
    seconds: Seconds = 0.0
    first_token_seconds: Seconds = 0.0
    author: Text200 | None = None


class SalienceRecordIn(_Identified):
    kind: Literal["salience"]
    id: Id
    run_id: Id | None = None
    model: Label
    precision: Text20 = "bfloat16"
    prompt: str
    target: str
    span: tuple[Count, Count] | None = None
    result: JsonObject

    @field_validator("result")
    @classmethod
    def _readable_result(cls, value: dict) -> dict:
        check_result(value)
        return value

    @model_validator(mode="after")
    def _span_inside_the_text(self) -> SalienceRecordIn:
        if self.span is not None:
            start, end = self.span
            if not start < end <= len(self.prompt) + len(self.target):
                raise ValueError(
                    "span: should be [start, end] with start < end, inside the prompt and target "
                    f"(0 to {len(self.prompt) + len(self.target)})"
                )
        return self


class ComparisonRecord(_Record):
    kind: Literal["comparison"]
    id: Annotated[str, AfterValidator(_link_id)] | None = None
    state: JsonObject

    @field_validator("state")
    @classmethod
    def _restorable(cls, value: dict) -> dict:
        if not isinstance(value.get("state"), dict) or not isinstance(value.get("variants"), list):
            raise ValueError("should be a saved comparison: an object with 'state' {…} and 'variants' […]")
        if not all(isinstance(variant, dict) for variant in value["variants"]):
            raise ValueError("'variants' should be a list of objects")
        _snapshot_id(value)  # within a link's size limit
        return value

    @model_validator(mode="after")
    def _id_is_the_content_hash(self) -> ComparisonRecord:
        if self.id is not None and self.id != self.canonical_id:
            raise ValueError(
                f"id: should be the hash of the comparison's content, {json.dumps(self.canonical_id)} "
                f"(a link's id names what it shows), not {json.dumps(self.id)}; fix it or leave it out"
            )
        return self

    @property
    def canonical_id(self) -> str:
        return _snapshot_id(self.state)


class NoteRecord(_Authored):
    kind: Literal["note"]
    id: Id
    run_id: Id | None = None
    comparison_id: Annotated[str, AfterValidator(_link_id)] | None = None
    reviewer: Named(MAX_REVIEWER)
    rating: StrictInt | None = None
    text: str = ""

    @field_validator("rating")
    @classmethod
    def _thumbs(cls, value: int | None) -> int | None:
        if value not in (None, 1, -1):
            raise ValueError("should be 1 (thumbs up), -1 (thumbs down) or null (no rating)")
        return value

    @model_validator(mode="after")
    def _one_subject(self) -> NoteRecord:
        if (self.run_id is None) == (self.comparison_id is None):
            raise ValueError("run_id, comparison_id: a note belongs to one run or one comparison")
        return self


MAX_REVIEW_ITEMS = 2_000
MAX_REVIEW_TEXT = 2_000  # a review's instructions, a verdict's reason


class ReviewVariantRecord(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    name: Name
    template: Annotated[str, AfterValidator(_no_nul)] = ""


class ReviewItemRecord(BaseModel):
    """One pair of outputs a review shows, with the inputs and each variant's values."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    position: Annotated[int, Field(ge=0, le=MAX_INTEGER)]
    row: Annotated[int, Field(ge=0, le=MAX_INTEGER)] | None = None
    inputs: dict[str, Annotated[str, AfterValidator(_no_nul)]] = {}
    values: Annotated[
        list[dict[str, Annotated[str, AfterValidator(_no_nul)]]], Field(min_length=2, max_length=2)
    ]
    outputs: Annotated[list[str], Field(min_length=2, max_length=2)]
    passed: Annotated[list[bool | None], Field(min_length=2, max_length=2)] = [None, None]


class ReviewRecord(_Authored):
    """A blind review with the items it shows (the outputs kept as they were shown)."""

    kind: Literal["review"]
    id: Id
    name: Name
    instructions: Annotated[str, StringConstraints(max_length=MAX_REVIEW_TEXT), AfterValidator(_no_nul)] = ""
    ask_reason: bool = False
    per_item: Annotated[int, Field(ge=1, le=20)] = 1
    variants: Annotated[list[ReviewVariantRecord], Field(min_length=2, max_length=2)]
    options: JsonObject = {}
    items: Annotated[list[ReviewItemRecord], Field(min_length=1, max_length=MAX_REVIEW_ITEMS)]
    author: Text200 | None = None

    @model_validator(mode="after")
    def _positions_unique(self) -> ReviewRecord:
        positions = [item.position for item in self.items]
        if len(set(positions)) != len(positions):
            raise ValueError("items: each item needs its own position")
        return self


class VerdictRecord(_Authored):
    """A reviewer's answer on the item at ``item`` (its position) of the review ``review_id``."""

    kind: Literal["verdict"]
    id: Id
    review_id: Id
    item: Annotated[int, Field(ge=0, le=MAX_INTEGER)]
    reviewer: Named(MAX_REVIEWER)
    choice: Literal["first", "second", "same", "neither"]
    left: Literal[0, 1]
    reason: Annotated[str, StringConstraints(max_length=MAX_REVIEW_TEXT), AfterValidator(_no_nul)] = ""
    updated_at: When = None


Record = (
    VersionRecord
    | RunRecord
    | SalienceRecordIn
    | ComparisonRecord
    | NoteRecord
    | ReviewRecord
    | VerdictRecord
)
_RECORD = TypeAdapter(Annotated[Record, Field(discriminator="kind")])


class BadRows(ValueError):
    """Some lines of a file are not valid records; ``problems`` has one line per bad row."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:MAX_REPORTED]
        if len(problems) > MAX_REPORTED:
            shown.append(f"… and {len(problems) - MAX_REPORTED} more bad rows.")
        super().__init__("\n".join(shown))


def _shown(value: Any) -> str:
    if isinstance(value, bool | int | float) or value is None:
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 30 else value[:29] + "…", ensure_ascii=False)
    return "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else "?"


def _problem(error: dict) -> str:
    """One field's problem: where, what is allowed and (for short values) what was there."""
    loc = [str(part) for part in error["loc"][1:]]  # [0] is the kind
    field = ".".join(loc) or "record"
    kind = error["type"]
    if kind == "missing":
        return f"{field}: required" if len(loc) < 2 or not loc[-1].isdigit() else f"{field}: missing"
    if kind == "extra_forbidden":
        return f"{field}: not a field of this kind of record"
    message = _SUBJECT.sub("should", error["msg"].removeprefix("Value error, ")).removeprefix("should be ")
    if not loc:  # a rule across fields: its message names them
        return message
    message = message if message.startswith(("should", "must", "has")) else f"should be {message}"
    if kind == "value_error":
        return f"{field}: {message}"
    return f"{field}: {message}, not {_shown(error.get('input'))}"


def _fix_tuple_paths(errors: list[dict]) -> list[dict]:
    """A too-short pair (span [1]) reports its missing element: name the pair instead."""
    out = []
    for error in errors:
        loc = error["loc"]
        if error["type"] == "missing" and len(loc) >= 3 and isinstance(loc[-1], int):
            error = {**error, "type": "value_error", "loc": loc[:-1], "msg": "should be a pair [start, end]"}
        out.append(error)
    return out


def parse_line(number: int, line: str) -> Record:
    """A record from one JSONL line; ValueError with that row's one-line problem."""
    try:
        return _RECORD.validate_json(line)
    except ValidationError as error:
        errors = _fix_tuple_paths(error.errors(include_url=False))
        first = errors[0]
        if first["type"] == "json_invalid":
            reason = first["ctx"]["error"]
            if "recursion limit" in reason:
                reason = "nested too deeply"
            raise ValueError(f"Line {number} is not JSON ({reason}).") from None
        if first["type"] in ("union_tag_invalid", "union_tag_not_found", "dict_type", "model_type"):
            raise ValueError(
                f"Line {number} is not a workspace record: it should be an object whose 'kind' is one of "
                + ", ".join(KINDS)
                + "."
            ) from None
        kind = first["loc"][0]
        try:
            record_id = json.loads(line).get("id")
        except (ValueError, RecursionError, AttributeError):
            record_id = None
        where = f"{kind}, id {_shown(record_id)}" if record_id is not None else kind
        problems = list(dict.fromkeys(_problem(e) for e in errors))
        raise ValueError(f"Line {number} ({where}): " + "; ".join(problems) + ".") from None


def parse_lines(text: str) -> list[tuple[int, Record]]:
    """Every record of a JSONL text with its line number; BadRows lists every bad row."""
    records, problems = [], []
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines: U+2028 is text
        if not line.strip():
            continue
        try:
            records.append((number, parse_line(number, line)))
        except ValueError as error:
            problems.append(str(error))
    problems.extend(_duplicates(records))
    if problems:
        raise BadRows(problems)
    return records


def _duplicates(records: list[tuple[int, Record]]) -> list[str]:
    """Two records of a kind with one id (links would be ambiguous) or one uid (one record twice)."""
    seen: dict[tuple[str, str, object], int] = {}
    problems = []
    for number, record in records:
        if record.kind == "comparison":
            continue  # a comparison's id is the hash of its content; a repeat is the same one
        for field_name in ("id", "uid"):
            value = getattr(record, field_name)
            if value is None:
                continue
            first = seen.setdefault((record.kind, field_name, value), number)
            if first != number:
                problems.append(
                    f"Line {number} ({record.kind}, id {record.id}): {field_name}: already used by line "
                    f"{first}; each record of a kind needs its own {field_name}."
                )
    return problems


def dumped(record: Record) -> dict:
    """The record's content as JSON-ready data (what a fingerprint is computed from: not its ids).
    Authors left out are not part of it: a record from personal mode, or from a file exported
    before authors were recorded, keeps the fingerprint it had."""
    data = record.model_dump(mode="json", exclude={"id", "uid"})
    added = IDENTITY_FIELDS if isinstance(record, VersionRecord) else ("author", *IDENTITY_FIELDS)
    for field_name in added:  # (a version's author name was always part of it)
        if field_name in data and data[field_name] is None:
            del data[field_name]
    return data
