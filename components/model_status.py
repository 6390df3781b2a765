"""Where a model's start stands (`LoadStatus`, `ModelStart`) and what an engine last said (`EngineHealth`)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

LOADING, WARMING, READY, FAILED = "loading", "warming", "ready", "failed"


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
    settled: bool = True  # no start-up work left, not even in the background

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
class ModelStart:
    """One model's load (a future) and warm-up, with the timings of each step."""

    spec: str
    model: Future = field(default_factory=Future)
    ready: Future = field(default_factory=Future)  # loaded and the first actions' graphs traced
    warmed: Future = field(default_factory=Future)  # every start-up step done, background ones too
    began: float = field(default_factory=time.perf_counter)
    loaded_at: float = 0.0  # `time.perf_counter()` when the load ended (0 until then)
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
