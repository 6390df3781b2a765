"""The shared model: one registry per server process (st.cache_resource), thread-safe.

Each model spec loads behind its own future, in a background thread, so no page
script ever waits on another session's load: pages ask for the model's status,
draw what needs no model at once and show "Loading the model (about N s)…".
After loading, the graphs the first Generate, the first click and the first
Integrated Gradients need are traced in the same background thread ("warming").
The app starts the default model this way on the first script run of the process.

The app's default model spec (`components.model_specs`) is the engine the app is pointed at
(``--engine URL`` or ``$GEMMA_WORKBENCH_ENGINE``), else ``$WORKBENCH_MODEL`` (default
``embedded``). Beside this registry: `components.model_status` (what a start looks like),
`components.model_warm_up`, `components.startup_timings` (the "about N s" estimate) and
`components.model_shutdown` (a clean server stop). An engine's "model" is a
`salience.serving.remote.RemoteModel`: connecting to it loads nothing here and imports no TensorFlow
(the engine warms its own replicas), and its health — replica count, or why it stopped
answering — is re-asked in the background at most every `HEALTH_SECONDS`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

import streamlit as st

from components import model_warm_up, startup_timings
from components.model_specs import (
    MODEL_ENV,
    default_spec,
    engine_from_args,
    engine_spec,
    in_process_spec,
    is_remote,
)
from components.model_status import FAILED, LOADING, READY, WARMING, EngineHealth, LoadStatus, ModelStart
from components.model_warm_up import WARM_UP_STEPS
from components.session_work import stop_check
from salience.core.errors import CancelledError, ModelLoadError, WorkbenchError
from salience.core.types import Generation, GenerationSettings, SalienceResult
from salience.serving.remote import EngineUnavailable

# "off" disables the result cache (benchmarks use it to time real work on repeated inputs).
RESULT_CACHE_ENV = "WORKBENCH_RESULT_CACHE"
KEPT_MODELS = 2
KEPT_RESULTS = 256
# The app's own start waits this long at most for the first page to draw: page and loader
# share one interpreter lock on two cores, and the page comes first.
FIRST_DRAW_WAIT = 4.0
HEALTH_SECONDS = 10.0  # an engine's replica count is re-asked at most this often
CHANGED_NOTE_SECONDS = 120.0  # how long the sidebar says that the engine switched models
log = logging.getLogger(__name__)


class ModelRegistry:
    """Models by spec (each loading behind its own future), plus caches of results."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held only for bookkeeping, never during a load
        self._starts: OrderedDict[str, ModelStart] = OrderedDict()
        # Results have their own lock: a look-up never waits on model bookkeeping (or the reverse).
        self._results_lock = threading.Lock()
        self._results: OrderedDict[tuple, object] = OrderedDict()
        self._cache_results = os.environ.get(RESULT_CACHE_ENV, "on").lower() not in ("off", "0", "no")
        self._first_draw = threading.Event()
        self._page_drawing = threading.Event()
        self._health: dict[str, EngineHealth] = {}  # engine URL -> what it last said
        self._changed: dict[str, tuple[str, float]] = {}  # engine URL -> (why, when) it switched models

    # ---- loading -------------------------------------------------------------
    def start(
        self, spec: str, retry: bool = False, warm_up: bool = True, after_first_draw: bool = False
    ) -> ModelStart:
        """Begin loading ``spec`` in the background unless it is loading or loaded already.

        A failed load stays failed (its message shown) until ``retry`` asks again.
        ``after_first_draw`` lets a page that is drawing finish before the load takes the CPU
        (at most `FIRST_DRAW_WAIT` seconds; see `page_started`, `page_drawn`); with no page
        drawing (a server that starts its model before anyone visits) the load begins at once.
        """
        with self._lock:
            current = self._starts.get(spec)
            failed = current is not None and current.model.done() and current.model.exception() is not None
            if current is None or (retry and failed):
                current = ModelStart(spec)
                self._starts[spec] = current
                threading.Thread(
                    target=self._load,
                    args=(current, warm_up, after_first_draw),
                    name=f"load {spec}",
                    daemon=True,
                ).start()
            self._starts.move_to_end(spec)
            return current

    def page_started(self) -> None:
        """A page has begun drawing: a load about to begin lets it finish first."""
        self._page_drawing.set()

    def page_drawn(self) -> None:
        """A page has been drawn: a load waiting for that may take the CPU now."""
        self._first_draw.set()

    def _load(self, start: ModelStart, warm_up: bool, after_first_draw: bool = False) -> None:
        if is_remote(start.spec):
            self._connect(start)
            return
        if after_first_draw and self._page_drawing.is_set():
            self._first_draw.wait(FIRST_DRAW_WAIT)
        from salience.model.loader import load_model, skip_random_init

        def progress(message: str, fraction: float) -> None:
            start.message = message

        try:
            began = time.perf_counter()
            with skip_random_init():
                model = load_model(start.spec, progress)
            start.timings["load"] = time.perf_counter() - began
        except WorkbenchError as error:
            start.model.set_exception(error)
            self._settled(start)
            return
        except Exception as error:  # a broken file or preset: say why, keep the app alive
            log.exception("loading %s failed", start.spec)
            start.model.set_exception(ModelLoadError(f"Could not load '{start.spec}': {error}"))
            self._settled(start)
            return
        start.loaded_at = time.perf_counter()
        start.message = "Warming up"
        start.model.set_result(model)
        self._evict()
        try:
            if warm_up:
                model_warm_up.warm_up(self, start, model)
        finally:
            model_warm_up.mark_ready(start)
            start.warmed.set_result(None)
            startup_timings.remember_timings(start.spec, start.timings)
            log.info("started %s: %s", start.spec, {k: round(v, 2) for k, v in start.timings.items()})

    @staticmethod
    def _settled(start: ModelStart) -> None:
        """Nothing more to do for this start (failed, or nothing to warm)."""
        start.ready.set_result(None)
        start.warmed.set_result(None)

    def _connect(self, start: ModelStart) -> None:
        """An engine's model: wait (with its message) while its replicas load; nothing to warm."""
        from salience.serving.remote import connect

        def progress(message: str, fraction: float) -> None:
            start.message = message

        start.message = f"Connecting to the engine at {start.spec}"
        try:
            model = connect(start.spec, progress)
        except WorkbenchError as error:
            start.model.set_exception(error)
        except Exception as error:  # never let a strange answer take the app down
            log.exception("connecting to %s failed", start.spec)
            start.model.set_exception(ModelLoadError(f"Could not use the engine at {start.spec}: {error}"))
        else:
            with self._lock:
                self._health[model.url] = EngineHealth(model.replicas, None, time.monotonic())
            start.model.set_result(model)
            self._evict()
        start.timings["load"] = time.perf_counter() - start.began
        self._settled(start)  # the engine warms its own replicas

    # ---- engines -------------------------------------------------------------
    def engine_health(self, model) -> EngineHealth:
        """What the engine behind ``model`` last said; asks again in the background (never
        waiting) when that is older than `HEALTH_SECONDS`."""
        url = model.url
        with self._lock:
            health = self._health.get(url) or EngineHealth(model.replicas, None, time.monotonic())
            stale = not health.checking and time.monotonic() - health.checked > HEALTH_SECONDS
            if stale:
                health = replace(health, checking=True)
            self._health[url] = health
        if stale:
            threading.Thread(
                target=self._check, args=(model,), name=f"engine check {url}", daemon=True
            ).start()
        return health

    def check_engine(self, model) -> EngineHealth:
        """Ask the engine behind ``model`` now (waits for its answer, a few seconds at most)."""
        self._check(model)
        with self._lock:
            return self._health[model.url]

    def _check(self, model) -> None:
        replicas, problem = model.replicas, None
        try:
            replicas = model.refresh().replicas
        except EngineUnavailable as error:
            problem = str(error)
        except WorkbenchError as error:  # the engine serves another model now
            self._switched(model, str(error))
        except Exception as error:  # an answer we do not understand: say so, keep the app up
            problem = f"The engine at {model.url} answered strangely ({error})."
        with self._lock:
            self._health[model.url] = EngineHealth(replicas, problem, time.monotonic())

    def engine_failed(self, model, error: Exception) -> None:
        """A call to ``model`` failed: remember an engine that went away (the sidebar says so and
        offers the in-process model) or that switched models (the next page run reconnects)."""
        url = getattr(model, "url", None)
        if url is None:
            return
        if isinstance(error, EngineUnavailable):
            with self._lock:
                old = self._health.get(url) or EngineHealth(model.replicas)
                self._health[url] = replace(old, problem=str(error), checked=time.monotonic())
        elif isinstance(error, ModelLoadError):
            self._switched(model, str(error))

    def _engine_answered(self, model) -> None:
        url = getattr(model, "url", None)
        with self._lock:
            health = self._health.get(url) if url else None
            if health is not None and health.problem:
                self._health[url] = replace(health, problem=None, checked=time.monotonic())

    def _switched(self, model, why: str) -> None:
        """The engine at ``model.url`` serves another model now: forget this connection, so the
        next page run connects again and uses what it serves."""
        with self._lock:
            for spec, start in list(self._starts.items()):
                if start.model.done() and start.model.exception() is None and start.model.result() is model:
                    del self._starts[spec]
            self._changed[model.url] = (
                f"The engine at {model.url} no longer serves {model.name} ({model.spec}); "
                "the app now uses the model it serves.",
                time.monotonic(),
            )
        log.info("engine %s switched models: %s", model.url, why)

    def engine_changed(self, url: str) -> str | None:
        """One line when the engine at ``url`` switched models within `CHANGED_NOTE_SECONDS`."""
        with self._lock:
            note = self._changed.get(url)
        if note is None or time.monotonic() - note[1] > CHANGED_NOTE_SECONDS:
            return None
        return note[0]

    def _evict(self) -> None:
        with self._lock:
            loaded = [spec for spec, s in self._starts.items() if s.model.done() and not s.model.exception()]
            for spec in loaded[: max(0, len(loaded) - KEPT_MODELS)]:
                del self._starts[spec]

    def status(self, spec: str) -> LoadStatus:
        """The start of ``spec`` as the page shows it (starts loading it if nobody has)."""
        return self._status_of(self.start(spec))

    def peek(self, spec: str) -> LoadStatus | None:
        """The start of ``spec`` if one has begun (None otherwise); starts nothing."""
        with self._lock:
            start = self._starts.get(spec)
        return None if start is None else self._status_of(start)

    def _status_of(self, start: ModelStart) -> LoadStatus:
        spec = start.spec
        expected_load, expected_warm = startup_timings.expected(spec)
        elapsed = time.perf_counter() - start.began
        error = None
        if not start.model.done():
            phase = LOADING
        elif start.model.exception() is not None:
            phase, error = FAILED, str(start.model.exception())
        elif not start.ready.done():
            phase = WARMING
        else:
            phase = READY
        notice = getattr(start.model.result(), "notice", None) if phase in (WARMING, READY) else None
        return LoadStatus(
            spec,
            phase,
            start.message,
            elapsed,
            expected_load,
            expected_warm,
            error,
            notice,
            settled=start.warmed.done(),
        )

    def model(self, spec: str):
        """The loaded model for ``spec``, or None while it loads or when it failed (never blocks)."""
        start = self.start(spec)
        if start.model.done() and start.model.exception() is None:
            return start.model.result()
        return None

    def loaded(self, spec: str) -> bool:
        with self._lock:
            start = self._starts.get(spec)
        return start is not None and start.model.done() and start.model.exception() is None

    def get(self, spec: str, timeout: float | None = None):
        """The model for ``spec``, waiting for its load (raises its `WorkbenchError` if it failed)."""
        return self.start(spec).model.result(timeout)

    def wait_warm(self, spec: str, timeout: float | None = None) -> None:
        """Wait until ``spec`` has loaded and finished warming up (or failed)."""
        self.start(spec).warmed.result(timeout)

    def timings(self, spec: str) -> dict[str, float]:
        """Seconds each start-up step took (load, bf16 copy, decode graphs, ...)."""
        return dict(self.start(spec).timings)

    # ---- results -------------------------------------------------------------
    def _remember(self, key: tuple, value):
        if not self._cache_results:
            return value
        with self._results_lock:
            self._results[key] = value
            while len(self._results) > KEPT_RESULTS:
                self._results.popitem(last=False)
        return value

    def cached(self, key: tuple):
        with self._results_lock:
            return self._results.get(key)

    def visitor_work(self, spec: str) -> None:
        """A visitor asked model ``spec`` for something (its warm-up gives way after the current step)."""
        if threading.current_thread().name.startswith("load "):
            return  # the warm-up's own calls
        with self._lock:
            start = self._starts.get(spec)
        if start is not None:
            start.visitor_work.set()

    def stream(
        self,
        model,
        prompt: str,
        settings: GenerationSettings,
        precision: str,
        cancelled: Callable[[], bool] | None = None,
    ):
        """Yield partial generations; a repeat of the same inputs comes from the cache.

        Between two tokens the generation stops once ``cancelled()`` (by default: the calling
        page's session has ended; on its script thread also a pending rerun) says nobody wants
        it; an engine's request is closed then, which stops it on the engine too."""
        if not hasattr(model, "url"):  # an engine's calls take no CPU here
            self.visitor_work(model.spec)
        cancelled = cancelled or stop_check()
        reproducible = settings.greedy or settings.seed is not None
        key = ("generate", model.spec, precision, prompt, settings)
        hit = self.cached(key) if reproducible else None
        if hit is not None:
            yield hit
            return
        final: Generation | None = None
        partials = model.stream(prompt, settings, precision)
        try:
            for final in partials:
                if cancelled():
                    raise CancelledError("The generation stopped: the page that asked for it has closed.")
                yield final
        except ModelLoadError as error:
            self.engine_failed(model, error)
            raise
        finally:
            partials.close()
        self._engine_answered(model)
        if reproducible and final is not None:
            self._remember(key, final)

    def salience(
        self,
        model,
        prompt: str,
        target: str,
        span: tuple[int, int] | None,
        methods: tuple[str, ...],
        precision: str,
        segments: tuple[tuple[int, int], ...] | None = None,
    ) -> SalienceResult:
        """``model.salience`` for a click, cached; ``segments`` (token spans) serve the methods
        that score segments (the Deletion estimate, the page's default)."""
        if not hasattr(model, "url"):  # an engine's calls take no CPU here
            self.visitor_work(model.spec)
        segments = tuple(tuple(span) for span in segments) if segments is not None else None
        key = ("salience", model.spec, precision, prompt, target, span, methods, segments)
        hit = self.cached(key)
        if hit is not None:
            return hit
        try:
            result = model.salience(
                prompt, target, char_span=span, methods=methods, precision=precision, segments=segments
            )
        except ModelLoadError as error:
            self.engine_failed(model, error)
            raise
        self._engine_answered(model)
        return self._remember(key, result)


__all__ = [  # with the names owned elsewhere that pages and tests import from here
    "FAILED",
    "LOADING",
    "MODEL_ENV",
    "READY",
    "WARMING",
    "WARM_UP_STEPS",
    "EngineHealth",
    "LoadStatus",
    "ModelRegistry",
    "default_spec",
    "engine_from_args",
    "engine_spec",
    "in_process_spec",
    "is_remote",
    "page_drawn",
    "page_started",
    "preload",
    "registry",
]


@st.cache_resource(show_spinner=False)
def registry() -> ModelRegistry:
    """The process-wide registry shared by every browser session."""
    return ModelRegistry()


def preload() -> None:
    """Start loading (and warming) the default model now, in the background; returns at once.

    The load begins at once, or, if a page is drawing, once it has drawn (`page_drawn`) or after
    `FIRST_DRAW_WAIT`."""
    registry().start(default_spec(), after_first_draw=True)


def page_started() -> None:
    """Call at the start of every script run (app.py does)."""
    registry().page_started()


def page_drawn() -> None:
    """Call at the end of every script run (app.py does)."""
    registry().page_drawn()
