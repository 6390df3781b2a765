"""What the engine's HTTP interface sends and receives (`salience.serving.deployment`, `salience.serving.remote`).

Plain JSON: generations (`Generation.to_json`) and salience results (`SalienceResult.to_json`,
exact for float32 scores), and errors as ``{"error": message, "kind": class name}`` so the client
raises the same `WorkbenchError` subclass the engine raised. Streams are JSON lines (NDJSON).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from salience.core import errors

PROTOCOL = 1  # bumped when a request or answer changes shape
NDJSON = "application/x-ndjson"
# The largest request body the engine reads (a prompt is at most 4,096 tokens; a batch is
# split into requests of a few rows): a larger one is refused with a clear line.
MAX_REQUEST_BYTES = 8 * 2**20
MODEL_HEADER = "X-Engine-Model"  # the model spec the client expects the engine to serve
# "background" on a request made inside `salience.model.lock.background_work()` (the app's
# Deletion check after a click): on the engine, a waiting foreground call goes before it.
PRIORITY_HEADER = "X-Engine-Priority"
BACKGROUND = "background"
# A streamed answer sends {"tick": n} when it has had nothing else to say for this long: the
# client gets a moment to give up (its page closed), and the engine learns that it is gone.
TICK = "tick"
TICK_SECONDS = 0.5


def dumps(value) -> bytes:
    """JSON bytes (NaN allowed: a log-probability can be NaN)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def line(value) -> bytes:
    return dumps(value) + b"\n"


def error_to_json(error: BaseException) -> dict:
    return {"error": str(error), "kind": type(error).__name__}


def error_from_json(data: Mapping) -> errors.WorkbenchError:
    """The `WorkbenchError` subclass the engine named (a plain `WorkbenchError` for others)."""
    kind = getattr(errors, str(data.get("kind", "")), None)
    if not (isinstance(kind, type) and issubclass(kind, errors.WorkbenchError)):
        kind = errors.WorkbenchError
    return kind(str(data.get("error") or "The engine failed without saying why."))
