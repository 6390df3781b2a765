"""Plain result types shared by the engine, the CLI and the UI."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Tokenization:
    """Tokens of a text with the character span of each (``offsets[i] = (start, end)``)."""

    ids: tuple[int, ...]
    tokens: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...]

    def __len__(self) -> int:
        return len(self.ids)


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


@dataclass(frozen=True)
class Generation:
    """What the model wrote after the prompt."""

    prompt: str
    text: str
    token_ids: tuple[int, ...]
    stop_reason: str  # "stop_sequence", "end_of_text", "max_new_tokens"
    seconds: float
    first_token_seconds: float

    @property
    def tokens_per_second(self) -> float:
        decode_time = self.seconds - self.first_token_seconds
        steps = max(len(self.token_ids) - 1, 0)
        return steps / decode_time if decode_time > 0 and steps else 0.0


@dataclass(frozen=True)
class SalienceResult:
    """Scores per token of prompt+target for one target span.

    ``scores[method]`` has one float per token (shape ``[len(tokens)]``); tokens at
    or after ``target_token_span[0]`` score zero. For signed methods positive means
    the score is positive (only Deletion reads as "supported"; see salience.methods).
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

    def to_json(self) -> dict:
        """JSON-ready dict: tokens, offsets, target span and one array per method."""
        return {
            "text": self.text,
            "prompt_length": self.prompt_length,
            "tokens": list(self.tokens),
            "offsets": [list(span) for span in self.offsets],
            "target_token_span": list(self.target_token_span),
            "target_text": self.target_text,
            "target_log_prob": self.target_log_prob,
            "seconds": round(self.seconds, 4),
            "diagnostics": self.diagnostics,
            **{name: [float(v) for v in values] for name, values in self.scores.items()},
        }
