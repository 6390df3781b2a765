"""The shared model registry: one model's slow load (a minutes-long Kaggle download) never
blocks another session's model, status or cached results."""

from __future__ import annotations

import threading
import time

import pytest

from components import startup_timings
from components.model_resource import LOADING, ModelRegistry


class FakeModel:
    def __init__(self, spec: str):
        self.spec = spec


@pytest.fixture
def slow_loads(monkeypatch):
    """load_model that blocks on 'slow' until released; any other spec loads at once."""
    import salience.model.loader

    release = threading.Event()
    entered = threading.Event()

    def load_model(spec, progress=None):
        if spec == "slow":
            entered.set()
            assert release.wait(30), "the test never released the slow load"
        return FakeModel(spec)

    monkeypatch.setattr(salience.model.loader, "load_model", load_model)
    monkeypatch.setattr(startup_timings, "remember_timings", lambda spec, timings: None)
    yield entered, release
    release.set()


def within(seconds: float, work):
    """Run ``work`` in a thread; fail if it has not returned after ``seconds``."""
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("value", work()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"blocked for over {seconds} s"
    return box.get("value")


def test_a_slow_load_blocks_no_other_session(slow_loads):
    entered, release = slow_loads
    registry = ModelRegistry()
    registry.start("slow", warm_up=False)
    assert entered.wait(10)  # the slow load is under way (and stays so until released)
    registry._remember(("salience", "fast", "x"), "cached result")

    began = time.perf_counter()
    assert within(5, lambda: registry.get("fast", timeout=5)).spec == "fast"
    assert within(5, lambda: registry.cached(("salience", "fast", "x"))) == "cached result"
    assert within(5, lambda: registry.status("slow")).phase == LOADING
    assert within(5, lambda: registry.model("slow")) is None
    assert within(5, lambda: registry.loaded("fast"))
    assert time.perf_counter() - began < 5
    release.set()
    assert registry.get("slow", timeout=10).spec == "slow"


def test_result_look_ups_do_not_wait_on_model_bookkeeping():
    registry = ModelRegistry()
    registry._remember(("generate", "m"), "hit")
    with registry._lock:  # a start being recorded, an eviction...
        assert within(2, lambda: registry.cached(("generate", "m"))) == "hit"
        assert within(2, lambda: registry._remember(("generate", "n"), "new")) == "new"


def test_status_carries_the_loads_notice(monkeypatch):
    import salience.model.loader

    def load_model(spec, progress=None):
        model = FakeModel(spec)
        model.notice = "The model cache was damaged: model.weights.h5 is truncated; it was rebuilt."
        return model

    monkeypatch.setattr(salience.model.loader, "load_model", load_model)
    monkeypatch.setattr(startup_timings, "remember_timings", lambda spec, timings: None)
    registry = ModelRegistry()
    registry.start("damaged", warm_up=False)
    registry.wait_warm("damaged", timeout=10)
    assert "truncated" in registry.status("damaged").notice
