"""One named prompt: a template with variable values, and what travels with it.

The same idea appears as a sample prompt (with a reference target and notes), a variant pinned
on the Compare page (with the model's output and a stable uid) and a variant of an evaluation
(whose values fill the variables a data set has no column for). ``to_json``/``from_json`` are the
one JSON form of all of them; ``from_json`` also reads every shape saved before they were one
type: sample JSONL rows (``source``; LIT's plain ``prompt``), Compare variants in links and
autosaved states, and evaluation plans (``defaults``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from salience.core.errors import InputError
from salience.core.text import escape_braces
from salience.prompts.templates import RenderedPrompt, parse_template, render


def new_uid() -> str:
    return uuid.uuid4().hex[:8]


# Older names of fields, read by ``from_json``: samples named a prompt ``source``; evaluation plans
# called a variant's values ``defaults``.
_ALIASES = {"name": ("source",), "variables": ("defaults",)}


@dataclass(frozen=True)
class Variant:
    """A named template with its variable values (a plain prompt is a template with none).

    ``output``: the model's output once generated (Compare); ``target``: a reference text to
    explain and ``notes`` (samples); ``uid``: a stable id for widgets, not part of equality.
    """

    name: str
    template: str
    variables: dict[str, str] = field(default_factory=dict)
    output: str | None = field(default=None, kw_only=True)
    target: str | None = field(default=None, kw_only=True)
    notes: str | None = field(default=None, kw_only=True)
    uid: str = field(default_factory=new_uid, kw_only=True, compare=False)

    def render(self) -> RenderedPrompt:
        """The prompt text with slot spans (a variable without a value is empty);
        raises TemplateError for a broken template."""
        parsed = parse_template(self.template)
        return render(parsed, {name: self.variables.get(name, "") for name in parsed.variables})

    def to_json(self) -> dict:
        """``name``, ``template``, ``variables`` and every optional field that has a value."""
        data: dict = {"name": self.name, "template": self.template, "variables": dict(self.variables)}
        for name in ("output", "target", "notes", "uid"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        return data

    @classmethod
    def from_json(cls, data: object, default_name: str | None = None) -> Variant:
        """Read ``to_json``'s form or an older one; a wrong shape is an InputError naming the field.

        A record without a template may give a plain ``prompt`` (its braces become literal).
        ``default_name`` names a record that has none.
        """
        if not isinstance(data, Mapping):
            raise InputError(f"expected a JSON object, got {type(data).__name__}.")
        name = _text(data, "name", required=default_name is None) or default_name
        if "template" in data:
            template = _text(data, "template", required=True)
        else:
            template = escape_braces(_text(data, "prompt", required=True))
        variables = _lookup(data, "variables") or {}
        if not isinstance(variables, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
        ):
            raise InputError("'variables' must map names to text.")
        optional = {key: _text(data, key, required=False) for key in ("output", "target", "notes")}
        uid = _text(data, "uid", required=False)
        return cls(name, template, dict(variables), **optional, **({"uid": uid} if uid else {}))


def _lookup(data: Mapping, key: str) -> object:
    for name in (key, *_ALIASES.get(key, ())):
        if data.get(name) is not None:
            return data[name]
    return None


def _text(data: Mapping, key: str, required: bool) -> str | None:
    value = _lookup(data, key)
    if value is None:
        if required:
            raise InputError(f"missing field '{key}'.")
        return None
    if not isinstance(value, str):
        raise InputError(f"field '{key}' must be text, got {type(value).__name__}.")
    return value
