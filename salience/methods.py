"""Salience methods, registered by name.

Each method turns gradients of the target's log-probability with respect to the
input embeddings into one score per token. Signed methods follow one convention:
positive = the token pushed the model toward the target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from salience.errors import InputError

DEFAULT_METHODS = ("grad_l2", "grad_dot_input")
DEFAULT_IG_STEPS = 16


@dataclass
class GradientContext:
    """Inputs shared by all methods for one (sequence, target span); computes lazily."""

    forward: object  # salience.forward.GemmaForward
    ids: list[int]
    target_start: int
    target_end: int
    integrated_steps: int = DEFAULT_IG_STEPS
    width: int = 0  # pad the target to this many rows so other spans reuse the graph

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
    def path_gradient(self) -> np.ndarray:
        """Mean gradient along the path from zero embeddings to the input."""
        return self.forward.integrated_gradients(
            self.ids, self.target_start, self.target_end, self.integrated_steps, width=self.width
        )


@dataclass(frozen=True)
class SalienceMethod:
    """A named way to score tokens from a `GradientContext`."""

    name: str
    label: str
    signed: bool
    description: str
    compute: Callable[[GradientContext], np.ndarray]


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


register(
    SalienceMethod(
        name="grad_l2",
        label="Grad L2",
        signed=False,
        description="Size of the gradient at each token: how sensitive the target is to it.",
        compute=lambda ctx: np.linalg.norm(ctx.gradient, axis=-1),
    )
)
register(
    SalienceMethod(
        name="grad_dot_input",
        label="Grad · Input",
        signed=True,
        description="Gradient times embedding: positive pushed toward the target, negative away.",
        compute=lambda ctx: np.sum(ctx.gradient * ctx.embeddings, axis=-1),
    )
)
register(
    SalienceMethod(
        name="integrated_gradients",
        label="Integrated Gradients",
        signed=True,
        description="Grad · Input averaged along a path from zero embeddings; slower, more faithful.",
        compute=lambda ctx: np.sum(ctx.path_gradient * ctx.embeddings, axis=-1),
    )
)
