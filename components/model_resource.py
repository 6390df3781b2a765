"""The shared model: one registry per server process (st.cache_resource), thread-safe.

The app's default model spec comes from ``$WORKBENCH_MODEL`` (default ``embedded``);
tests point it at a tiny GGUF file that they write themselves.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable

import streamlit as st

from salience.loading import load_model
from salience.model import LanguageModel
from salience.types import Generation, GenerationSettings, SalienceResult

MODEL_ENV = "WORKBENCH_MODEL"
KEPT_MODELS = 2
KEPT_RESULTS = 256


def default_spec() -> str:
    return os.environ.get(MODEL_ENV, "embedded")


class ModelRegistry:
    """Loaded models by spec, plus caches of generations and salience results."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: OrderedDict[str, LanguageModel] = OrderedDict()
        self._results: OrderedDict[tuple, object] = OrderedDict()

    def loaded(self, spec: str) -> bool:
        return spec in self._models

    def get(self, spec: str, progress: Callable[[str, float], None] | None = None) -> LanguageModel:
        """The model for ``spec``; loads it (once, whatever the number of sessions) if needed."""
        with self._lock:
            if spec not in self._models:
                self._models[spec] = load_model(spec, progress)
                while len(self._models) > KEPT_MODELS:
                    self._models.popitem(last=False)
            self._models.move_to_end(spec)
            return self._models[spec]

    def _remember(self, key: tuple, value):
        with self._lock:
            self._results[key] = value
            while len(self._results) > KEPT_RESULTS:
                self._results.popitem(last=False)
        return value

    def cached(self, key: tuple):
        with self._lock:
            return self._results.get(key)

    def stream(self, model: LanguageModel, prompt: str, settings: GenerationSettings, precision: str):
        """Yield partial generations; a repeat of the same inputs comes from the cache."""
        reproducible = settings.greedy or settings.seed is not None
        key = ("generate", model.spec, precision, prompt, settings)
        hit = self.cached(key) if reproducible else None
        if hit is not None:
            yield hit
            return
        final: Generation | None = None
        for final in model.stream(prompt, settings, precision):
            yield final
        if reproducible and final is not None:
            self._remember(key, final)

    def salience(
        self,
        model: LanguageModel,
        prompt: str,
        target: str,
        span: tuple[int, int] | None,
        methods: tuple[str, ...],
        precision: str,
    ) -> SalienceResult:
        key = ("salience", model.spec, precision, prompt, target, span, methods)
        hit = self.cached(key)
        if hit is not None:
            return hit
        result = model.salience(prompt, target, char_span=span, methods=methods, precision=precision)
        return self._remember(key, result)


@st.cache_resource(show_spinner=False)
def registry() -> ModelRegistry:
    """The process-wide registry shared by every browser session."""
    return ModelRegistry()
