"""Saved app states behind short ids (permalinks).

``SnapshotStore`` is the interface; ``FileSnapshotStore`` keeps one JSON file per
snapshot under the data directory. Ids are content hashes, so saving the same
state twice gives the same link.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Protocol

import regex

from salience.core.errors import InputError
from salience.core.types import Generation, GenerationSettings

DATA_ENV = "GEMMA_WORKBENCH_DATA"
SNAPSHOT_VERSION = 1
MAX_SNAPSHOT_BYTES = 5_000_000
ID_LENGTH = 12
_ID = regex.compile(rf"[0-9a-f]{{{ID_LENGTH}}}")


class SnapshotNotFound(InputError):
    """No snapshot with that id on this server."""


def data_root() -> Path:
    """Where user data lives; override with $GEMMA_WORKBENCH_DATA."""
    configured = os.environ.get(DATA_ENV)
    root = Path(configured) if configured else Path.home() / ".local" / "share" / "gemma-workbench"
    return root.expanduser()


def check_id(snapshot_id: str) -> str:
    """The id, stripped; a malformed one is an InputError that says what a link looks like."""
    cleaned = (snapshot_id or "").strip().lower()
    if not _ID.fullmatch(cleaned):
        shown = snapshot_id if len(snapshot_id or "") <= 40 else snapshot_id[:40] + "…"
        raise InputError(
            f"'{shown}' is not a comparison link id (ids are {ID_LENGTH} letters a–f and digits). "
            "Check that the whole link was copied."
        )
    return cleaned


def encode(snapshot: dict) -> tuple[str, bytes]:
    """Canonical JSON bytes of a snapshot and its id."""
    payload = {"version": SNAPSHOT_VERSION, **snapshot}
    data = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise InputError(
            f"This state is {len(data) / 1e6:.1f} MB, over the {MAX_SNAPSHOT_BYTES / 1e6:.0f} MB a link "
            "can hold; remove a variant or shorten the prompts."
        )
    return hashlib.sha256(data).hexdigest()[:ID_LENGTH], data


def decode(data: bytes, snapshot_id: str) -> dict:
    try:
        payload = json.loads(data.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"The saved state '{snapshot_id}' is damaged and cannot be read.") from None
    if not isinstance(payload, dict) or payload.get("version") != SNAPSHOT_VERSION:
        raise InputError(f"The saved state '{snapshot_id}' comes from another version of the workbench.")
    payload.pop("version")
    return payload


class SnapshotStore(Protocol):
    def save(self, snapshot: dict) -> str:
        """Store a JSON-ready dict; returns its short id."""

    def load(self, snapshot_id: str) -> dict:
        """The dict saved under ``snapshot_id``; InputError if malformed, SnapshotNotFound if absent."""


class FileSnapshotStore:
    """One JSON file per snapshot, written atomically (temp file + rename)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else data_root() / "snapshots"

    def save(self, snapshot: dict) -> str:
        snapshot_id, data = encode(snapshot)
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{snapshot_id}.json"
        if path.exists():
            return snapshot_id
        handle, temporary = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return snapshot_id

    def load(self, snapshot_id: str) -> dict:
        snapshot_id = check_id(snapshot_id)
        path = self.root / f"{snapshot_id}.json"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SnapshotNotFound(
                f"No saved comparison '{snapshot_id}' on this server. Links work on the server that made "
                "them; ask for a new link."
            ) from None
        except OSError as error:
            raise InputError(f"The saved state '{snapshot_id}' cannot be read ({error.strerror}).") from None
        return decode(data, snapshot_id)


# A browser's last generation, kept with its state (see components/workspace/codec.py).


def generation_to_json(generation: Generation, made_for: tuple) -> dict:
    """The generation and what it was made for (model spec, precision, prompt, settings)."""
    spec, precision, prompt, settings = made_for
    return {**generation.to_json(), "for": [spec, precision, prompt, settings.to_json()]}


def generation_from_json(saved: dict) -> tuple[Generation, tuple]:
    """The inverse of ``generation_to_json``; InputError saying what is wrong when it cannot be read."""
    try:
        spec, precision, prompt, settings = saved["for"]
        return Generation.from_json(saved), (spec, precision, prompt, GenerationSettings.from_json(settings))
    except KeyError as error:
        raise InputError(f"the saved generation has no {error.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError) as error:
        raise InputError(f"the saved generation is malformed: {error}") from None
