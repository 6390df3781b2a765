"""The shared model: one registry per server process (st.cache_resource), thread-safe.

The app's default model spec comes from ``$WORKBENCH_MODEL`` (default ``embedded``);
tests point it at a tiny GGUF file that they write themselves.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable

import streamlit as st

from salience.errors import WorkbenchError
from salience.loading import load_model
from salience.methods import DEFAULT_METHODS
from salience.model import LanguageModel
from salience.samples import find_sample
from salience.types import Generation, GenerationSettings, SalienceResult

MODEL_ENV = "WORKBENCH_MODEL"
KEPT_MODELS = 2
KEPT_RESULTS = 256
WARM_UP_SAMPLE = "fewshot-mistake"
WARM_UP_SETTINGS = GenerationSettings(max_new_tokens=48, stop_sequences=("\n\n",))
log = logging.getLogger(__name__)


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
                model = load_model(spec, progress)
                self._models[spec] = model
                while len(self._models) > KEPT_MODELS:
                    self._models.popitem(last=False)
                threading.Thread(target=self._warm_up, args=(model,), daemon=True).start()
            self._models.move_to_end(spec)
            return self._models[spec]

    def _warm_up(self, model: LanguageModel) -> None:
        """Trace the graphs for the default sample in the background (and cache its result),
        so the first Generate and the first click answer at warm speed."""
        try:
            prompt = find_sample(WARM_UP_SAMPLE).render().text
            *_, final = self.stream(model, prompt, WARM_UP_SETTINGS, "bfloat16")
            if final.text:
                self.salience(model, prompt, final.text, None, DEFAULT_METHODS, "bfloat16")
        except WorkbenchError as error:  # e.g. a model whose context is too small
            log.info("warm-up skipped: %s", error)

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
