"""Salience methods, registered by name.

Gradient methods turn gradients of the target's log-probability with respect to
the input embeddings into one score per token. Deletion (``occlusion``) removes
each segment of the prompt and measures the change in the target's
log-probability; it is the only method whose sign means "supported" / "worked
against" (see docs/FAITHFULNESS.md for what the benchmark supports).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from salience.core.errors import InputError

DEFAULT_METHODS = ("grad_l2", "grad_dot_input")  # what a call without ``methods`` computes
# The page's, the CLI's and the engine's first colours: Deletion estimated for every segment and
# checked exactly where it matters (docs/FAITHFULNESS.md). Needs the view's segments.
DEFAULT_METHOD = "deletion_estimate"
GRADIENT_METHODS = ("grad_l2", "grad_dot_input", "integrated_gradients")
ESTIMATE_METHODS = ("attention_mask", "deletion_estimate")
DELETION = "occlusion"
DEFAULT_IG_STEPS = 16
IG_BASELINES = ("pad", "mean", "zero")
DEFAULT_IG_BASELINE = "zero"


@dataclass
class GradientContext:
    """Inputs shared by all methods for one (sequence, target span); computes lazily."""

    forward: object  # salience.model.forward.GemmaForward
    ids: list[int]
    target_start: int
    target_end: int
    integrated_steps: int = DEFAULT_IG_STEPS
    width: int = 0  # pad the target to this many rows so other spans reuse the graph
    integrated_baseline: str = DEFAULT_IG_BASELINE
    segments: Sequence[tuple[int, int]] | None = None  # token spans of the view, when known

    @cached_property
    def _gradients(self) -> tuple[float, np.ndarray, np.ndarray]:
        return self.forward.gradients(self.ids, self.target_start, self.target_end, self.width)

    @property
    def log_prob(self) -> float:
        return self._gradients[0]

    @property
    def gradient(self) -> np.ndarray:
        """[tokens, hidden] gradient of the target log-probability."""
        return self._gradients[1]

    @property
    def embeddings(self) -> np.ndarray:
        """[tokens, hidden] scaled input embeddings."""
        return self._gradients[2]

    @cached_property
    def attention_mask(self):
        """`salience.model.forward.AttentionMaskGradients` (one backward pass; per segment when known)."""
        return self.forward.attention_mask_gradients(
            self.ids, self.target_start, self.target_end, self.width, self.segments or ()
        )

    @cached_property
    def deletion_estimate(self):
        """`salience.attribution.estimate.DeletionEstimate` over ``segments`` (None without segments)."""
        if not self.segments:
            return None
        from salience.attribution.estimate import deletion_estimate

        return deletion_estimate(
            self.forward, self.ids, self.target_start, self.target_end, self.segments, width=self.width
        )

    @cached_property
    def integrated(self):
        """`salience.model.forward.IntegratedGradients` from the chosen baseline to the input."""
        return self.forward.integrated_gradients(
            self.ids,
            self.target_start,
            self.target_end,
            self.integrated_steps,
            baseline=self.integrated_baseline,
            width=self.width,
        )


@dataclass(frozen=True)
class SalienceMethod:
    """A named way to score the prompt for a target.

    ``plain`` is a plain-words subtitle for reviewers; ``low_words``/``high_words``
    are what the two ends of its colour scale may honestly be called;
    ``directional`` says whether its sign can be read as supported / worked against.
    ``compute`` is None for segment-level methods (Deletion), which the model runs itself.
    """

    name: str
    label: str
    plain: str
    signed: bool
    directional: bool
    description: str
    low_words: str
    high_words: str
    compute: Callable[[GradientContext], np.ndarray] | None = None
    aggregation: str | None = None  # how its token scores roll into segments, whatever is chosen
    trust: str = ""  # what the faithfulness benchmark measured, in a line (the method picker shows it)

    @property
    def segment_level(self) -> bool:
        """True when the method scores whole segments (every token carries its segment's score)."""
        return self.compute is None

    @property
    def title(self) -> str:
        """Label with its plain-words subtitle: 'Grad L2 — how sensitive'."""
        return f"{self.label} — {self.plain}"


REGISTRY: dict[str, SalienceMethod] = {}


def register(method: SalienceMethod) -> SalienceMethod:
    REGISTRY[method.name] = method
    return method


def get_method(name: str) -> SalienceMethod:
    """Look a method up by name; unknown names raise an `InputError` listing the choices."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise InputError(f"Unknown salience method '{name}'; choose one of: {', '.join(REGISTRY)}.") from None


def segment_aggregation(method: str, aggregation: str) -> str:
    """How to roll a method's token scores into segments: segment-level scores are already per
    segment (every token carries it), so they are averaged; the Deletion estimate's tokens add
    up to their segment's score, so they are summed; other methods follow the user's choice."""
    spec = get_method(method)
    if spec.aggregation:
        return spec.aggregation
    return "mean" if spec.segment_level else aggregation


register(
    SalienceMethod(
        name="grad_l2",
        label="Grad L2",
        plain="how sensitive",
        signed=False,
        directional=False,
        description="How sensitive the selected output is to each part of the prompt (size of the "
        "gradient). Fast. Large means small changes there move the output; it does not say in which "
        "direction. On held-out copy tasks its top sentence is usually the fact the answer uses.",
        low_words="little sensitivity",
        high_words="output most sensitive to this",
        compute=lambda ctx: np.linalg.norm(ctx.gradient, axis=-1),
        trust="Puts Deletion's top part first in 58% of the copy tasks, 38% of the sample prompts and "
        "14% of the realistic prompts (sentences).",
    )
)
register(
    SalienceMethod(
        name="grad_dot_input",
        label="Grad · Input",
        plain="signed sensitivity (unreliable sign)",
        signed=True,
        directional=False,
        description="Gradient times embedding. Its sign says whether making a token's embedding "
        "slightly larger would raise the output's probability — not whether the text supported it. "
        "On this model the sign is unreliable: the fact an answer depends on is often strongly "
        "negative. Use Deletion for 'supported / worked against'.",
        low_words="negative score",
        high_words="positive score",
        compute=lambda ctx: np.sum(ctx.gradient * ctx.embeddings, axis=-1),
        trust="Puts Deletion's top part first in 23% of the copy tasks, 12% of the sample prompts and 6% "
        "of the realistic prompts; its sign often points the wrong way.",
    )
)
register(
    SalienceMethod(
        name="integrated_gradients",
        label="Integrated Gradients",
        plain="path-averaged sensitivity (slower)",
        signed=True,
        directional=False,
        description="Grad · Input averaged along a path from a baseline prompt (zero embeddings by "
        "default; the padding token's or the vocabulary's average embedding on request) to the real one. "
        "Slow. In theory the scores add up to the change in log-probability between the two; on this "
        "model they often do not (the gap is kept with each result), and the sign is not a reliable "
        "'supported / worked against'.",
        low_words="negative score",
        high_words="positive score",
        compute=lambda ctx: np.sum(ctx.integrated.attributions, axis=-1),
        trust="Puts Deletion's top part first in 79% of the copy tasks and 38% of the sample prompts; slow.",
    )
)
register(
    SalienceMethod(
        name="attention_mask",
        label="Attention mask gradient",
        plain="what removing it would do, to first order",
        signed=True,
        directional=False,
        description="How much the selected output's log-probability depends on every layer attending to "
        "each token: the derivative with respect to scaling that attention down, which is what Deletion "
        "does, to first order. One pass, as fast as Grad L2. Summed over a sentence it ranks the facts an "
        "answer copies as Deletion does; it underestimates large effects and cannot see the line the "
        "output is predicted from (e.g. 'Answer:').",
        low_words="output likelier without it (estimate)",
        high_words="output less likely without it (estimate)",
        compute=lambda ctx: ctx.attention_mask.per_token,
        trust="Puts Deletion's top part first in 100% of the copy tasks, 50% of the sample prompts and "
        "25% of the realistic prompts: it cannot see the line the output is predicted from.",
    )
)


def _deletion_estimate(ctx: GradientContext) -> np.ndarray:
    estimate = ctx.deletion_estimate
    if estimate is None:
        return ctx.attention_mask.per_token
    return estimate.token_scores(len(ctx.ids))


register(
    SalienceMethod(
        name="deletion_estimate",
        label="Deletion estimate",
        plain="what removing each part does (estimated, key parts checked)",
        signed=True,
        directional=True,
        description="How much less (or more) likely the selected output becomes without each part of the "
        "prompt, in nats, at about the cost of one gradient pass: an attention-mask gradient estimates "
        "every part, and the line the output is predicted from plus the strongest estimate are deleted "
        "for real in the same pass. Positive: the part supported the output. Each part's tokens add up to "
        "its score. Without segments it is the attention mask gradient.",
        low_words="worked against (output likelier without it)",
        high_words="supported (output less likely without it)",
        compute=_deletion_estimate,
        aggregation="sum",
        trust="Puts Deletion's top part first in 100% of the copy tasks, 88–100% of the sample prompts "
        "and 100% of the realistic prompts, at about 1.5 times the time of Grad L2.",
    )
)
register(
    SalienceMethod(
        name=DELETION,
        label="Deletion",
        plain="what removing it does",
        signed=True,
        directional=True,
        description="Removes each segment from the prompt and measures how much less (or more) likely "
        "the selected output becomes, in nats. Positive: removing it makes the output less likely (it "
        "supported the output). Negative: removing it makes the output more likely (it worked against "
        "it). One pass per segment: use sentences, lines, paragraphs or template parts.",
        low_words="worked against (output likelier without it)",
        high_words="supported (output less likely without it)",
        aggregation="mean",
        trust="The reference the others are measured against; one pass per part, so seconds to minutes.",
    )
)
