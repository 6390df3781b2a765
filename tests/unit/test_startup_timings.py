"""The start-up timings file keeps the newest starts only (test runs start many temp GGUF specs)."""

from components import startup_timings


def test_the_newest_starts_are_kept_and_a_restart_counts_as_new(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMMA_WORKBENCH_CACHE", str(tmp_path))
    startup_timings.remember_timings("embedded", {"load": 7.0, "warm": 18.0})
    for number in range(startup_timings.KEEP_SPECS - 1):
        startup_timings.remember_timings(f"gguf:/tmp/{number}.gguf", {"load": 1.0})
    startup_timings.remember_timings("embedded", {"load": 6.5, "warm": 17.0})  # started again
    startup_timings.remember_timings("gguf:/tmp/new.gguf", {"load": 1.0})
    kept = startup_timings.remembered()
    assert len(kept) == startup_timings.KEEP_SPECS
    assert "gguf:/tmp/0.gguf" not in kept and "gguf:/tmp/new.gguf" in kept
    assert startup_timings.expected("embedded") == (6.5, 17.0)
