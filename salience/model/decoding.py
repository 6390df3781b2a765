"""What one-prompt decoding, batched decoding and the engine's client share: the limits, the
text checks, the tokenizer-side calls (`TextCalls`), the choice of the next token and stop sequences.

Pure NumPy: no TensorFlow, so the engine's client (`salience.serving.remote`) can use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from salience.core.errors import ContextLengthError, InputError
from salience.core.types import GenerationSettings, Tokenization
from salience.model.tokenizing import OffsetTokenizer

CHAT_TEMPLATE = "<start_of_turn>user\n{prompt}<end_of_turn>\n<start_of_turn>model\n"
MIN_CACHE_BUCKET = 128
MAX_NEW_TOKENS_LIMIT = 4096
# Beyond this many tokens a CPU takes minutes and attention needs gigabytes; refuse
# with a clear message rather than freeze the app (the model's context is larger).
CPU_TOKEN_LIMIT = 4096
PRECISIONS = ("bfloat16", "float32")


def check_text(text: str, what: str) -> None:
    """Reject empty text and text that is not valid Unicode."""
    if not text:
        raise InputError(f"The {what} is empty: type some text first.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InputError(
            f"The {what} contains invalid Unicode at character {error.start}; remove it and retry."
        ) from None


class TextCalls:
    """Tokenizing and prompt formatting: what a model answers without running it. Shared by
    `LanguageModel` and the engine's client (`salience.serving.remote`), so both count tokens alike.
    Needs ``tokenizer`` (an `OffsetTokenizer`), ``max_context`` and ``model_context``."""

    tokenizer: OffsetTokenizer
    max_context: int
    model_context: int

    def prompt_ids(self, prompt: str, settings: GenerationSettings, label: str = "") -> list[int]:
        """The formatted prompt's token ids; a `ContextLengthError` when it leaves no room for
        ``settings.max_new_tokens`` (``label``, e.g. "Row 3", starts the message)."""
        ids = list(self.tokenize(self.format_prompt(prompt, settings)).ids)
        budget = len(ids) + settings.max_new_tokens
        if budget > self.max_context:
            subject = f"{label}: the prompt" if label else "The prompt"
            raise ContextLengthError(
                f"{subject} has {len(ids)} tokens; with {settings.max_new_tokens} new tokens that is "
                f"{budget}, over the limit of {self.max_context} {self._limit_reason()}. "
                f"Shorten the prompt by {budget - self.max_context} tokens or ask for fewer new tokens."
            )
        return ids

    def _limit_reason(self) -> str:
        if self.max_context < self.model_context:
            return f"tokens this workbench runs on a CPU (the model itself reads {self.model_context:,})"
        return "tokens of this model's context"

    def tokenize(self, text: str, add_bos: bool = True) -> Tokenization:
        """Tokens of ``text`` with character offsets (with ``<bos>`` first by default)."""
        return self.tokenizer.tokenize(text, add_bos=add_bos)

    def tokenize_pair(self, prompt: str, target: str) -> tuple[Tokenization, int]:
        """Tokens of ``<bos> prompt`` then ``target`` (tokenized apart, as generation
        appends it), offsets into ``prompt + target``; also the index of the first target token."""
        head = self.tokenizer.tokenize(prompt, add_bos=True)
        tail = self.tokenizer.tokenize(target, offset=len(prompt))
        joined = Tokenization(head.ids + tail.ids, head.tokens + tail.tokens, head.offsets + tail.offsets)
        return joined, len(head)

    def format_prompt(self, prompt: str, settings: GenerationSettings) -> str:
        return CHAT_TEMPLATE.format(prompt=prompt) if settings.chat_template else prompt


def choose_token(logits: np.ndarray, settings: GenerationSettings, rng: np.random.Generator) -> int:
    """The next token: the most likely one when greedy, else sampled with temperature, top-k and top-p."""
    if settings.greedy:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64) / settings.temperature
    if settings.top_k:
        keep = np.argpartition(scaled, -settings.top_k)[-settings.top_k :]
    else:
        keep = np.arange(scaled.shape[0])
    order = keep[np.argsort(scaled[keep])[::-1]]
    probs = np.exp(scaled[order] - scaled[order[0]])
    probs /= probs.sum()
    if settings.top_p is not None and 0 < settings.top_p < 1:
        cutoff = int(np.searchsorted(np.cumsum(probs), settings.top_p)) + 1
        order, probs = order[:cutoff], probs[:cutoff] / probs[:cutoff].sum()
    return int(rng.choice(order, p=probs))


def first_stop(text: str, stops: Iterable[str]) -> int | None:
    """Where the earliest of ``stops`` starts in ``text`` (None: none occurs)."""
    found = [index for index in (text.find(stop) for stop in stops) if index >= 0]
    return min(found) if found else None


def without_partial_stop(text: str, stops: Sequence[str]) -> str:
    """Hold back a tail that might become a stop sequence, and half-decoded bytes."""
    text = text.rstrip("\ufffd")
    hold = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                hold = max(hold, size)
                break
    return text[: len(text) - hold] if hold else text
