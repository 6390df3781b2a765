"""Sample prompts in JSONL: our template records, or LIT's plain ``prompt``/``target`` rows."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from salience.errors import InputError
from salience.templates import TemplateError, parse_template, render
from salience.text import escape_braces, json_lines

SAMPLES_PATH = Path(__file__).resolve().parent.parent / "data" / "sample_prompts.jsonl"
MAX_FILE_BYTES = 5_000_000
MAX_RECORDS = 5_000


@dataclass(frozen=True)
class PromptExample:
    """One prompt case: a template with variable values (a plain prompt is a template with none)."""

    source: str
    template: str
    variables: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    notes: str | None = None

    def render(self):
        return render(self.template, self.variables)

    def to_json(self) -> dict:
        """The record ``parse_record`` reads back (fields without a value left out)."""
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}


def _text_field(record: dict, key: str, row: int, required: bool) -> str | None:
    value = record.get(key)
    if value is None:
        if required:
            raise InputError(f"Row {row}: missing field '{key}'.")
        return None
    if not isinstance(value, str):
        raise InputError(f"Row {row}: field '{key}' must be text, got {type(value).__name__}.")
    return value


def parse_record(record: object, row: int) -> PromptExample:
    """Validate one JSON row (template format or LIT's prompt format)."""
    if not isinstance(record, dict):
        raise InputError(f"Row {row}: expected a JSON object, got {type(record).__name__}.")
    source = _text_field(record, "source", row, required=False) or f"row {row}"
    target = _text_field(record, "target", row, required=False)
    notes = _text_field(record, "notes", row, required=False)
    if "template" in record:
        template = _text_field(record, "template", row, required=True)
        variables = record.get("variables") or {}
        if not isinstance(variables, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
        ):
            raise InputError(f"Row {row}: 'variables' must map names to text.")
        try:
            render(parse_template(template), variables)
        except TemplateError as error:
            raise InputError(f"Row {row}: {error}") from None
        return PromptExample(source, template, dict(variables), target, notes)
    prompt = _text_field(record, "prompt", row, required=True)
    return PromptExample(source, escape_braces(prompt), {}, target, notes)


def parse_jsonl(content: str | bytes) -> list[PromptExample]:
    """Parse a user's JSONL; errors name the row (1-based) and what is wrong."""
    if isinstance(content, bytes):
        if len(content) > MAX_FILE_BYTES:
            raise InputError(f"The file is larger than {MAX_FILE_BYTES // 1_000_000} MB; split it.")
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError("The file is not UTF-8 text; save it as UTF-8 and retry.") from None
    if len(content.encode("utf-8")) > MAX_FILE_BYTES:
        raise InputError(f"The file is larger than {MAX_FILE_BYTES // 1_000_000} MB; split it.")
    examples = []
    for row, record in json_lines(content, "Row"):
        examples.append(parse_record(record, row))
        if len(examples) > MAX_RECORDS:
            raise InputError(f"The file has more than {MAX_RECORDS} prompts; split it.")
    if not examples:
        raise InputError(
            "The file has no prompts: each line should be a JSON object with a 'prompt' or 'template'."
        )
    return examples


def load_samples(path: str | Path = SAMPLES_PATH) -> list[PromptExample]:
    """The sample prompts shipped with the project (or another JSONL file)."""
    try:
        return parse_jsonl(Path(path).read_bytes())
    except OSError as error:
        raise InputError(f"Cannot read '{path}': {error.strerror}.") from None


def find_sample(source: str, examples: list[PromptExample] | None = None) -> PromptExample:
    """The example whose ``source`` matches; unknown names list the choices."""
    examples = examples if examples is not None else load_samples()
    for example in examples:
        if example.source == source:
            return example
    names = ", ".join(e.source for e in examples)
    raise InputError(f"No sample named '{source}'; choose one of: {names}.")
