"""The shared model: one registry per server process (st.cache_resource), thread-safe.

Each model spec loads behind its own future, in a background thread, so no page
script ever waits on another session's load: pages ask for the model's status,
draw what needs no model at once and show "Loading the model (about N s)…".
After loading, the graphs the first Generate, the first click and the first
Integrated Gradients need are traced in the same background thread ("warming").
The app starts the default model this way on the first script run of the process.

The app's default model spec is the engine the app is pointed at (``--engine URL`` or
``$GEMMA_WORKBENCH_ENGINE``), else ``$WORKBENCH_MODEL`` (default ``embedded``); tests point the
latter at a tiny GGUF file that they write themselves. An engine's "model" is a
`salience.serving.remote.RemoteModel`: connecting to it loads nothing here and imports no TensorFlow
(the engine warms its own replicas), and its health — replica count, or why it stopped
answering — is re-asked in the background at most every `HEALTH_SECONDS`.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path

import streamlit as st

from components.session_work import stop_check
from salience.attribution.agreement import deletion_targets, token_spans
from salience.attribution.methods import DEFAULT_METHOD, DELETION
from salience.core.errors import CancelledError, ModelLoadError, WorkbenchError
from salience.core.types import Generation, GenerationSettings, SalienceResult
from salience.prompts.samples import find_sample
from salience.prompts.segments import make_segments
from salience.serving.remote import ENGINE_ENV, EngineUnavailable, engine_url, is_engine_spec

MODEL_ENV = "WORKBENCH_MODEL"
# "off" disables the result cache (benchmarks use it to time real work on repeated inputs).
RESULT_CACHE_ENV = "WORKBENCH_RESULT_CACHE"
KEPT_MODELS = 2
KEPT_RESULTS = 256
WARM_UP_SAMPLE = "fewshot-mistake"
WARM_UP_SETTINGS = GenerationSettings(max_new_tokens=48, stop_sequences=("\n\n",))
WARM_UP_PRECISION = "bfloat16"
WARM_UP_STEPS = (
    "bf16 copy",
    "decode graphs",
    "salience graph",
    "deletion graphs",
    "integrated gradients graph",
)
TIMINGS_FILE = "startup_seconds.json"
# First guesses (seconds) before a start has been measured on this machine.
GUESS_LOAD, GUESS_CONVERT, GUESS_WARM = 15.0, 75.0, 25.0
# The app's own start waits this long at most for the first page to draw: page and loader
# share one interpreter lock on two cores, and the page comes first.
FIRST_DRAW_WAIT = 4.0
HEALTH_SECONDS = 10.0  # an engine's replica count is re-asked at most this often
CHANGED_NOTE_SECONDS = 120.0  # how long the sidebar says that the engine switched models
log = logging.getLogger(__name__)

LOADING, WARMING, READY, FAILED = "loading", "warming", "ready", "failed"


def in_process_spec() -> str:
    """The model this process loads itself: ``$WORKBENCH_MODEL``, else the embedded one."""
    return os.environ.get(MODEL_ENV, "embedded")


def engine_spec() -> str | None:
    """The engine the app is pointed at (``--engine`` / ``$GEMMA_WORKBENCH_ENGINE``), or None."""
    return engine_url()


def default_spec() -> str:
    """The app's default model: the engine when one is set, else the in-process model."""
    return engine_spec() or in_process_spec()


def is_remote(spec: str | None) -> bool:
    """A spec served by an engine (an http(s) address, or whatever the engine setting says:
    a malformed setting must fail as an engine address, never load a model here)."""
    return is_engine_spec(spec) or (spec is not None and spec == engine_url())


def engine_from_args(argv: list[str]) -> str | None:
    """Apply ``--engine URL`` from the script's arguments (``streamlit run serve.py -- --engine
    URL``) to this process, as ``$GEMMA_WORKBENCH_ENGINE``; returns the engine in effect."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--engine")
    known, _ = parser.parse_known_args(argv)
    if known.engine:
        os.environ[ENGINE_ENV] = known.engine.strip()
    return engine_url()


class _VisitorsFirst(Exception):
    """Ends a warm-up early: visitors' own requests are tracing the same graphs."""


# Set when the interpreter exits: warm-ups stop at the next step or token.
_STOPPING = threading.Event()
EXIT_WAIT_SECONDS = 3.0


def _stop_background_work(wait: float = EXIT_WAIT_SECONDS, exit_status: int = 1) -> None:
    """At interpreter exit (a server stop): end the model threads before Python finalizes.

    A loader thread is a daemon. Finalizing Python while it is inside TensorFlow makes the
    thread unwind through TensorFlow's C++ frames when it next asks for the interpreter
    lock, which aborts the process ("terminate called after throwing an instance of ...",
    "FATAL: exception not rethrown", status 134). So warm-ups are told to stop and get a
    few seconds to finish their current call; a thread still inside TensorFlow after that
    (a load or a long compile) only loads or compiles, so nothing is lost by leaving at
    once, skipping the finalization that would abort."""
    _STOPPING.set()
    busy = [t for t in threading.enumerate() if t.name.startswith("load ") and t.is_alive()]
    deadline = time.monotonic() + wait
    for thread in busy:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in busy):
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(exit_status)


def _exit_hook_first() -> None:
    """Exit handlers run last-registered first: run ours before those TensorFlow and Keras
    registered when they loaded, while they still work."""
    atexit.unregister(_stop_background_work)
    atexit.register(_stop_background_work)


atexit.register(_stop_background_work)


@dataclass(frozen=True)
class LoadStatus:
    """Where one model's start stands, for the page to show."""

    spec: str
    phase: str  # LOADING, WARMING, READY or FAILED
    message: str
    elapsed: float
    expected_load: float  # seconds the load itself takes (remembered from the last start)
    expected_warm: float
    error: str | None = None
    notice: str | None = None  # what the load had to do that the user should know (a rebuilt cache)

    @property
    def usable(self) -> bool:
        """The model can answer (warming only makes the very first answers slower)."""
        return self.phase in (WARMING, READY)

    @property
    def remaining(self) -> int:
        """Seconds until the current phase ends, by the remembered timings (at least 1)."""
        total = self.expected_load + (self.expected_warm if self.phase == WARMING else 0.0)
        return max(1, round(total - self.elapsed))

    @property
    def eta(self) -> str:
        """'about 12 s', or 'longer than usual' once the remembered timings have run out."""
        total = self.expected_load + (self.expected_warm if self.phase == WARMING else 0.0)
        return f"about {self.remaining} s" if self.elapsed < total else "taking longer than usual"


@dataclass
class _Start:
    """One model's load (a future) and warm-up, with the timings of each step."""

    spec: str
    model: Future = field(default_factory=Future)
    warmed: Future = field(default_factory=Future)
    began: float = field(default_factory=time.perf_counter)
    message: str = "Starting"
    timings: dict[str, float] = field(default_factory=dict)
    # Set when a visitor's own request reaches this model: it traces the same graphs, so the
    # warm-up stops after its current step instead of competing with it for the CPU.
    visitor_work: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class EngineHealth:
    """What the app last heard from an engine: its replica count, or why it stopped answering."""

    replicas: int
    problem: str | None = None  # one line while the engine does not answer
    checked: float = 0.0  # time.monotonic() of the last answer or failure
    checking: bool = False  # a background check is under way


def _timings_path() -> Path:
    from salience.model.embedded import cache_root

    return cache_root() / TIMINGS_FILE


def _remembered() -> dict[str, dict[str, float]]:
    try:
        data = json.loads(_timings_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _remember_timings(spec: str, timings: dict[str, float]) -> None:
    try:
        data = _remembered()
        data[spec] = {name: round(seconds, 2) for name, seconds in timings.items()}
        path = _timings_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(".tmp")
        staging.write_text(json.dumps(data, indent=1))
        os.replace(staging, path)
    except OSError as error:  # a read-only cache only costs the estimate
        log.info("could not remember start-up timings: %s", error)


def _expected(spec: str) -> tuple[float, float]:
    """(load seconds, warm-up seconds) for ``spec``: the last measured start, else a guess."""
    known = _remembered().get(spec) or {}
    load = known.get("load")
    if load is None:
        load = GUESS_LOAD
        if spec == "embedded":
            from salience.model.embedded import is_complete, preset_dir

            load = GUESS_LOAD if is_complete(preset_dir()) else GUESS_CONVERT
    warm = known.get("warm", GUESS_WARM)
    return float(load), float(warm)


class ModelRegistry:
    """Models by spec (each loading behind its own future), plus caches of results."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held only for bookkeeping, never during a load
        self._starts: OrderedDict[str, _Start] = OrderedDict()
        # Results have their own lock: a look-up never waits on model bookkeeping (or the reverse).
        self._results_lock = threading.Lock()
        self._results: OrderedDict[tuple, object] = OrderedDict()
        self._cache_results = os.environ.get(RESULT_CACHE_ENV, "on").lower() not in ("off", "0", "no")
        self._first_draw = threading.Event()
        self._health: dict[str, EngineHealth] = {}  # engine URL -> what it last said
        self._changed: dict[str, tuple[str, float]] = {}  # engine URL -> (why, when) it switched models

    # ---- loading -------------------------------------------------------------
    def start(
        self, spec: str, retry: bool = False, warm_up: bool = True, after_first_draw: bool = False
    ) -> _Start:
        """Begin loading ``spec`` in the background unless it is loading or loaded already.

        A failed load stays failed (its message shown) until ``retry`` asks again.
        ``after_first_draw`` lets the first page draw before the load takes the CPU
        (at most `FIRST_DRAW_WAIT` seconds; see `page_drawn`).
        """
        with self._lock:
            current = self._starts.get(spec)
            failed = current is not None and current.model.done() and current.model.exception() is not None
            if current is None or (retry and failed):
                current = _Start(spec)
                self._starts[spec] = current
                threading.Thread(
                    target=self._load,
                    args=(current, warm_up, after_first_draw),
                    name=f"load {spec}",
                    daemon=True,
                ).start()
            self._starts.move_to_end(spec)
            return current

    def page_drawn(self) -> None:
        """A page has been drawn: a load waiting for that may take the CPU now."""
        self._first_draw.set()

    def _load(self, start: _Start, warm_up: bool, after_first_draw: bool = False) -> None:
        if is_remote(start.spec):
            self._connect(start)
            return
        if after_first_draw:
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
            start.warmed.set_result(None)
            return
        except Exception as error:  # a broken file or preset: say why, keep the app alive
            log.exception("loading %s failed", start.spec)
            start.model.set_exception(ModelLoadError(f"Could not load '{start.spec}': {error}"))
            start.warmed.set_result(None)
            return
        start.message = "Warming up"
        start.model.set_result(model)
        self._evict()
        try:
            if warm_up:
                self._warm_up(start, model)
        finally:
            start.timings["warm"] = time.perf_counter() - began - start.timings["load"]
            start.warmed.set_result(None)
            _remember_timings(start.spec, start.timings)
            log.info("started %s: %s", start.spec, {k: round(v, 2) for k, v in start.timings.items()})

    def _connect(self, start: _Start) -> None:
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
        start.warmed.set_result(None)  # the engine warms its own replicas

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

    def _warm_up(self, start: _Start, model) -> None:
        """Trace every graph the first Generate, the first click (gradients, then Deletion in
        the background) and the first Integrated Gradients need, on the default sample
        (and cache its answer and explanation). The salience graph is traced for the
        sample's sequence bucket; decoding and Deletion graphs take any length."""
        from salience.model.loader import skip_random_init

        _exit_hook_first()  # TensorFlow has registered its own exit handlers by now

        def step(name: str, message: str, work: Callable[[], object]) -> object:
            if start.visitor_work.is_set() or _STOPPING.is_set():
                raise _VisitorsFirst
            start.message = message
            began = time.perf_counter()
            result = work()
            start.timings[name] = time.perf_counter() - began  # only steps that succeeded
            return result

        try:
            prompt = find_sample(WARM_UP_SAMPLE).render().text

            def bfloat16_copy() -> None:
                with skip_random_init():
                    model.forward_for(WARM_UP_PRECISION)

            step("bf16 copy", "Preparing the bfloat16 weights", bfloat16_copy)

            def decode() -> Generation:
                final = None
                for partial in self.stream(model, prompt, WARM_UP_SETTINGS, WARM_UP_PRECISION):
                    if start.visitor_work.is_set() or _STOPPING.is_set():  # between tokens
                        raise _VisitorsFirst
                    final = partial
                return final

            final = step("decode graphs", "Compiling the decoder (first Generate)", decode)
            if not final.text:
                return

            def first_click() -> None:
                tokens, _ = model.tokenize_pair(prompt, final.text)
                segments = make_segments(prompt + final.text, tokens.offsets, "sentences", len(prompt))
                spans = token_spans(segments, deletion_targets(segments, len(prompt)))
                self.salience(model, prompt, final.text, None, (DEFAULT_METHOD,), WARM_UP_PRECISION, spans)

            step("salience graph", "Compiling the salience graph (first click)", first_click)
            step(
                "deletion graphs",
                "Compiling Deletion (runs after each click)",
                lambda: model.salience(
                    prompt, final.text, methods=(DELETION,), segments=[(1, 2)], precision=WARM_UP_PRECISION
                ),
            )
            step(
                "integrated gradients graph",
                "Compiling Integrated Gradients",
                lambda: model.salience(
                    prompt,
                    final.text,
                    methods=("integrated_gradients",),
                    integrated_steps=1,  # the same batched graph as any step count; runs once
                    precision=WARM_UP_PRECISION,
                ),
            )
        except _VisitorsFirst:
            log.info("warm-up of %s ended early: a visitor's requests are compiling the graphs", start.spec)
        except WorkbenchError as error:  # e.g. a model whose context is too small
            log.info("warm-up skipped: %s", error)
        except Exception:  # never let a warm-up failure take the loaded model down
            if _STOPPING.is_set():  # the interpreter is exiting under it: not a failure
                log.info("warm-up of %s ended: the server is stopping", start.spec)
            else:
                log.exception("warm-up of %s failed", start.spec)

    def status(self, spec: str) -> LoadStatus:
        """The start of ``spec`` as the page shows it (starts loading it if nobody has)."""
        return self._status_of(self.start(spec))

    def peek(self, spec: str) -> LoadStatus | None:
        """The start of ``spec`` if one has begun (None otherwise); starts nothing."""
        with self._lock:
            start = self._starts.get(spec)
        return None if start is None else self._status_of(start)

    def _status_of(self, start: _Start) -> LoadStatus:
        spec = start.spec
        expected_load, expected_warm = _expected(spec)
        elapsed = time.perf_counter() - start.began
        error = None
        if not start.model.done():
            phase = LOADING
        elif start.model.exception() is not None:
            phase, error = FAILED, str(start.model.exception())
        elif not start.warmed.done():
            phase = WARMING
        else:
            phase = READY
        notice = getattr(start.model.result(), "notice", None) if phase in (WARMING, READY) else None
        return LoadStatus(spec, phase, start.message, elapsed, expected_load, expected_warm, error, notice)

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


@st.cache_resource(show_spinner=False)
def registry() -> ModelRegistry:
    """The process-wide registry shared by every browser session."""
    return ModelRegistry()


def preload() -> None:
    """Start loading (and warming) the default model now, in the background; returns at once.

    The load begins once the first page has drawn (`page_drawn`) or after `FIRST_DRAW_WAIT`."""
    registry().start(default_spec(), after_first_draw=True)


def page_drawn() -> None:
    """Call at the end of every script run (app.py does)."""
    registry().page_drawn()
