"""Sample prompts in JSONL: our template records (``source``, ``template``, ``variables``, optional
``target`` and ``notes``), or LIT's plain ``prompt``/``target`` rows; each becomes a ``Variant``."""

from __future__ import annotations

from pathlib import Path

from salience.core.errors import InputError
from salience.core.text import json_lines
from salience.prompts.templates import TemplateError, parse_template, render
from salience.prompts.variant import Variant

SAMPLES_PATH = Path(__file__).resolve().parents[2] / "data" / "sample_prompts.jsonl"
MAX_FILE_BYTES = 5_000_000
MAX_RECORDS = 5_000


def parse_record(record: object, row: int) -> Variant:
    """Validate one JSON row (template format or LIT's prompt format); a row without a
    ``source`` is named "row N"."""
    try:
        example = Variant.from_json(record, default_name=f"row {row}")
        render(parse_template(example.template), example.variables)
    except (InputError, TemplateError) as error:
        raise InputError(f"Row {row}: {error}") from None
    return example


def parse_jsonl(content: str | bytes) -> list[Variant]:
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


def load_samples(path: str | Path = SAMPLES_PATH) -> list[Variant]:
    """The sample prompts shipped with the project (or another JSONL file)."""
    try:
        return parse_jsonl(Path(path).read_bytes())
    except OSError as error:
        raise InputError(f"Cannot read '{path}': {error.strerror}.") from None


def find_sample(name: str, examples: list[Variant] | None = None) -> Variant:
    """The example named ``name``; unknown names list the choices."""
    examples = examples if examples is not None else load_samples()
    for example in examples:
        if example.name == name:
            return example
    names = ", ".join(e.name for e in examples)
    raise InputError(f"No sample named '{name}'; choose one of: {names}.")
