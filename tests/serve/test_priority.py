"""The engine keeps the app's priorities: a background call from the app is background work there."""

from __future__ import annotations

import json

from salience.model.lock import BACKGROUND, FOREGROUND, background_work, current_rank
from salience.serving import deployment, remote, wire


def _rank_in_events(background: bool) -> int:
    lines = list(deployment._events(lambda emit, cancelled: current_rank(), None, background))
    final = [json.loads(line) for line in lines if b'"final"' in line]
    return final[0]["final"]


def test_the_engine_runs_a_background_request_as_background_work():
    assert _rank_in_events(background=True) == BACKGROUND
    assert _rank_in_events(background=False) == FOREGROUND


def test_the_client_asks_for_background_priority_only_inside_background_work():
    assert remote._priority() == {}
    with background_work():
        assert remote._priority() == {wire.PRIORITY_HEADER: wire.BACKGROUND}
