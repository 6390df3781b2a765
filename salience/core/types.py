"""Plain result types shared by the engine, the CLI and the UI."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

RESULT_FORMAT_VERSION = 2  # SalienceResult.to_json; 1 = the unversioned format (scores as top-level keys)
# The keys of format 1 that are not a method's scores (every other list of numbers was one).
_V1_FIELDS = frozenset(
    {"text", "prompt_length", "tokens", "offsets", "target_token_span", "target_text", "target_log_prob"}
    | {"seconds", "diagnostics"}
)
# Method parameters that format 1 kept in the diagnostics (Integrated Gradients' baseline and steps).
_V1_PARAMETERS = {"integrated_gradients": ("baseline", "steps")}


@dataclass(frozen=True)
class Tokenization:
    """Tokens of a text with the character span of each (``offsets[i] = (start, end)``)."""

    ids: tuple[int, ...]
    tokens: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...]

    def __len__(self) -> int:
        return len(self.ids)


# What the workbench offers for each generation setting (its widgets, and what an imported run
# may carry so that it opens there).
PAGE_MAX_NEW_TOKENS = 512
TEMPERATURE_RANGE = (0.05, 2.0)  # or 0: greedy
MAX_TOP_K = 1000  # 0 = off
TOP_P_RANGE = (0.05, 1.0)
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class GenerationSettings:
    """How to decode. ``temperature == 0`` means greedy (reproducible)."""

    max_new_tokens: int = 64
    stop_sequences: tuple[str, ...] = ()
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    chat_template: bool = False

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def to_json(self) -> dict:
        """Plain JSON values (the stop sequences as a list)."""
        values = dataclasses.asdict(self)
        values["stop_sequences"] = list(self.stop_sequences)
        return values

    @classmethod
    def from_json(cls, saved: dict) -> GenerationSettings:
        """Settings from `to_json`; fields this version does not know are ignored, missing ones default."""
        known = {field.name for field in dataclasses.fields(cls)}
        values = {key: value for key, value in saved.items() if key in known}
        if "stop_sequences" in values:
            values["stop_sequences"] = tuple(values["stop_sequences"] or ())
        return cls(**values)


@dataclass(frozen=True)
class Generation:
    """What the model wrote after the prompt."""

    prompt: str
    text: str
    token_ids: tuple[int, ...]
    stop_reason: str  # "stop_sequence", "end_of_text", "max_new_tokens"
    seconds: float
    first_token_seconds: float

    def to_json(self) -> dict:
        """Plain JSON values (the token ids as a list)."""
        values = dataclasses.asdict(self)
        values["token_ids"] = list(self.token_ids)
        return values

    @classmethod
    def from_json(cls, saved: Mapping) -> Generation:
        """A generation from `to_json`; KeyError, TypeError or ValueError when malformed."""
        return cls(
            str(saved["prompt"]),
            str(saved["text"]),
            tuple(int(token) for token in saved["token_ids"]),
            str(saved["stop_reason"]),
            float(saved["seconds"]),
            float(saved["first_token_seconds"]),
        )

    @property
    def tokens_per_second(self) -> float:
        decode_time = self.seconds - self.first_token_seconds
        steps = max(len(self.token_ids) - 1, 0)
        return steps / decode_time if decode_time > 0 and steps else 0.0


@dataclass(frozen=True)
class Provenance:
    """How a result was computed: the model, its compute precision and each method's parameters,
    e.g. ``{"integrated_gradients": {"baseline": "zero", "steps": 16},
    "occlusion": {"granularity": "sentences", "pattern": None}}``. Empty strings are unknown
    (results saved before the format recorded them)."""

    model: str = ""
    precision: str = ""
    parameters: dict[str, dict] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "precision": self.precision,
            "parameters": {name: dict(values) for name, values in self.parameters.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping | None) -> Provenance:
        data = data or {}
        parameters = data.get("parameters") or {}
        if not isinstance(parameters, Mapping) or not all(
            isinstance(v, Mapping) for v in parameters.values()
        ):
            raise ValueError("provenance parameters should map each method to its parameters")
        return cls(
            model=str(data.get("model") or ""),
            precision=str(data.get("precision") or ""),
            parameters={str(name): dict(values) for name, values in parameters.items()},
        )

    def merged(self, other: Provenance) -> Provenance:
        """This provenance with ``other``'s method parameters added (and its blanks filled)."""
        return Provenance(
            self.model or other.model,
            self.precision or other.precision,
            {**self.parameters, **other.parameters},
        )

    def describe(self, label: Callable[[str], str] = str) -> str:
        """One line for a reader, e.g. 'embedded at bfloat16 · Integrated gradients: baseline pad,
        16 steps · Deletion: sentences' (``label`` names a method)."""
        where = f"{self.model or 'model not recorded'}" + (f" at {self.precision}" if self.precision else "")
        parts = [where]
        for method, values in self.parameters.items():
            shown = [
                f"{name} {value}" if name != "steps" else f"{value} steps"
                for name, value in values.items()
                if value not in (None, "") and name != "granularity"
            ]
            if values.get("granularity"):
                shown.insert(0, str(values["granularity"]))
            if shown:
                parts.append(f"{label(method)}: {', '.join(shown)}")
        return " · ".join(parts)

    def filled(self, model: str, precision: str) -> Provenance:
        """Blank model or precision filled in (e.g. from the row an old result was saved in)."""
        return replace(self, model=self.model or model, precision=self.precision or precision)


@dataclass(frozen=True)
class SalienceResult:
    """Scores per token of prompt+target for one target span.

    ``scores[method]`` has one float per token (shape ``[len(tokens)]``); tokens at
    or after ``target_token_span[0]`` score zero. For signed methods positive means
    the score is positive (only Deletion reads as "supported"; see salience.attribution.methods).
    """

    text: str
    prompt_length: int  # characters of the prompt inside ``text``
    tokens: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...]
    target_token_span: tuple[int, int]
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    target_log_prob: float = 0.0
    seconds: float = 0.0
    # Per-method facts beside the scores, e.g. {"occlusion": {"segments": [[a, b], ...],
    # "log_prob": ...}, "integrated_gradients": {"baseline": "pad", "completeness_gap": ...}}.
    diagnostics: dict = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)

    @property
    def target_text(self) -> str:
        start, end = self.target_token_span
        return self.text[self.offsets[start][0] : self.offsets[end - 1][1]]

    def summable(self, method: str) -> np.ndarray:
        """Token scores that add up over any grouping of tokens.

        Gradient scores already do. A segment-level method (Deletion) gives every token of a
        segment the segment's score; here that score is spread evenly over its tokens, so a
        template part's total is the sum of its segments' scores (exact when the parts are
        the segments) instead of growing with its token count.
        """
        values = np.asarray(self.scores[method], dtype=np.float64)
        segments = (self.diagnostics.get(method) or {}).get("segments")
        if not segments:
            return values
        spread = values.copy()
        for start, end in segments:
            if end > start:
                spread[start:end] = values[start] / (end - start)
        return spread

    def with_parameters(self, method: str, **parameters) -> SalienceResult:
        """This result with ``method``'s parameters recorded (e.g. Deletion's granularity)."""
        current = {**self.provenance.parameters.get(method, {}), **parameters}
        provenance = replace(self.provenance, parameters={**self.provenance.parameters, method: current})
        return replace(self, provenance=provenance)

    def to_json(self) -> dict:
        """JSON-ready dict in format ``RESULT_FORMAT_VERSION``; ``from_json`` reads it back.

        ``scores`` maps each method to one float per token; ``provenance`` says how they were
        computed; ``target_text`` is derived (for readers of the JSON, ignored on reading).
        """
        return {
            "format_version": RESULT_FORMAT_VERSION,
            "text": self.text,
            "prompt_length": self.prompt_length,
            "tokens": list(self.tokens),
            "offsets": [list(span) for span in self.offsets],
            "target_token_span": list(self.target_token_span),
            "target_text": self.target_text,
            "target_log_prob": self.target_log_prob,
            "seconds": round(self.seconds, 4),
            "scores": {name: [float(v) for v in values] for name, values in self.scores.items()},
            "diagnostics": self.diagnostics,
            "provenance": self.provenance.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping) -> SalienceResult:
        """A result from ``to_json`` of this format or of format 1 (no ``format_version``: each
        method's scores a top-level list). Malformed data raises KeyError, TypeError or ValueError."""
        if not isinstance(data, Mapping):
            raise TypeError("a saved result should be a JSON object")
        version = data.get("format_version", 1)
        if version == 1:
            data = upgrade_result_json(data)
        elif version != RESULT_FORMAT_VERSION:
            raise ValueError(
                f"format_version {version!r} (this version of the workbench reads 1 to {RESULT_FORMAT_VERSION})"
            )
        scores = data["scores"]
        if not isinstance(scores, Mapping):
            raise TypeError("scores should map each method to its scores")
        diagnostics = data.get("diagnostics")
        start, end = data["target_token_span"]
        return cls(
            text=str(data["text"]),
            prompt_length=int(data["prompt_length"]),
            tokens=tuple(data["tokens"]),
            offsets=tuple((int(a), int(b)) for a, b in data["offsets"]),
            target_token_span=(int(start), int(end)),
            scores={str(name): np.asarray(values, dtype=np.float32) for name, values in scores.items()},
            target_log_prob=float(data.get("target_log_prob") or 0.0),
            seconds=float(data.get("seconds") or 0.0),
            diagnostics=dict(diagnostics) if isinstance(diagnostics, Mapping) else {},
            provenance=Provenance.from_json(data.get("provenance")),
        )


def upgrade_result_json(data: Mapping) -> dict:
    """Format 1 (scores as top-level lists, beside the other fields) as the current format.

    The provenance of format 1 is unknown, except the parameters its diagnostics kept."""
    scores = {
        key: value
        for key, value in data.items()
        if key not in _V1_FIELDS and isinstance(value, list) and all(_is_number(v) for v in value)
    }
    upgraded = {key: value for key, value in data.items() if key in _V1_FIELDS}
    diagnostics = data.get("diagnostics") if isinstance(data.get("diagnostics"), Mapping) else {}
    parameters = {
        method: {name: diagnostics[method][name] for name in names if name in diagnostics[method]}
        for method, names in _V1_PARAMETERS.items()
        if method in scores and isinstance(diagnostics.get(method), Mapping)
    }
    upgraded.update(
        format_version=RESULT_FORMAT_VERSION,
        scores=scores,
        provenance={"model": "", "precision": "", "parameters": parameters},
    )
    return upgraded


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
