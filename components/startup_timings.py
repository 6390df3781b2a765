"""How long the last start of each model took (load, warm-up), remembered in the model cache
for the "Loading the model (about N s)…" estimate."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

TIMINGS_FILE = "startup_seconds.json"
# First guesses (seconds) before a start has been measured on this machine.
GUESS_LOAD, GUESS_CONVERT, GUESS_WARM = 15.0, 75.0, 25.0
KEEP_SPECS = 16  # the most recently started specs kept (GGUF files in temp folders come and go)
log = logging.getLogger(__name__)


def _timings_path() -> Path:
    from salience.model.embedded import cache_root

    return cache_root() / TIMINGS_FILE


def remembered() -> dict[str, dict[str, float]]:
    """Every remembered start: {spec: {step: seconds}} (empty when none or unreadable)."""
    try:
        data = json.loads(_timings_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def remember_timings(spec: str, timings: dict[str, float]) -> None:
    """Keep ``spec``'s start-up timings for the next estimate (a read-only cache only loses them);
    the `KEEP_SPECS` most recently started specs are kept."""
    try:
        data = remembered()
        data.pop(spec, None)  # the newest start last
        data[spec] = {name: round(seconds, 2) for name, seconds in timings.items()}
        data = dict(list(data.items())[-KEEP_SPECS:])
        path = _timings_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(".tmp")
        staging.write_text(json.dumps(data, indent=1))
        os.replace(staging, path)
    except OSError as error:  # a read-only cache only costs the estimate
        log.info("could not remember start-up timings: %s", error)


def expected(spec: str) -> tuple[float, float]:
    """(load seconds, warm-up seconds) for ``spec``: the last measured start, else a guess."""
    known = remembered().get(spec) or {}
    load = known.get("load")
    if load is None:
        load = GUESS_LOAD
        if spec == "embedded":
            from salience.model.embedded import is_complete, preset_dir

            load = GUESS_LOAD if is_complete(preset_dir()) else GUESS_CONVERT
    warm = known.get("warm", GUESS_WARM)
    return float(load), float(warm)
