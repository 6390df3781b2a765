"""Resolve a model spec into a `LanguageModel`.

Specs:
- ``embedded`` (default): Gemma 3 270M shipped on PyPI, converted once into the cache;
- ``kaggle:PRESET`` or a bare KerasHub preset name such as ``gemma_instruct_2b_en``:
  downloaded through kagglehub (needs Kaggle credentials and the network);
- ``preset:DIR`` or a path to a KerasHub preset directory;
- ``gguf:FILE`` or a path ending in ``.gguf``: a Gemma 3 GGUF converted in memory.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from salience.core.errors import CredentialsError, InputError, ModelLoadError, UnsupportedModelError
from salience.model.embedded import (
    ABSENT,
    EMBEDDED_DISPLAY_NAME,
    EMBEDDED_SPEC,
    damage,
    ensure_embedded_preset,
    preset_dir,
    problem,
    reading,
)
from salience.model.gguf_import import Progress
from salience.model.language_model import PRECISIONS, LanguageModel

EMBEDDED_CONTEXT = 32768
KAGGLE_PRESETS = (
    "gemma_instruct_2b_en",
    "gemma_2b_en",
    "gemma2_instruct_2b_en",
    "gemma2_2b_en",
    "gemma3_instruct_1b",
    "gemma3_1b",
)
SPEC_HELP = (
    "Use 'embedded', 'kaggle:PRESET' (e.g. kaggle:gemma_instruct_2b_en), "
    "'preset:DIR' for a local KerasHub preset, or 'gguf:FILE' for a Gemma 3 GGUF."
)


log = logging.getLogger(__name__)
_FAST_BUILD = threading.local()
_STREAMING = threading.local()
_PATCH_LOCK = threading.Lock()
# Stored weights this large are copied into their variable a block of rows at a time (see
# `streamed_weights`): Gemma 3 270M's 262k-word embedding is 0.67 GB in float32.
STREAM_BYTES = 64 << 20
BLOCK_BYTES = 16 << 20


@contextmanager
def skip_random_init() -> Iterator[None]:
    """Build Keras models in this thread without the work that loading overwrites anyway.

    Building a 270M-parameter model draws random initial values for every weight
    (~4 s here) and Keras tracks the tokenizer's 262k-entry vocabulary item by item
    (~3 s); the preset's weights replace the former and nothing needs the latter.
    Inside this context new variables start as zeros and the SentencePiece
    vocabulary is stored untracked. Only this thread is affected.
    """
    with _PATCH_LOCK:
        _install_fast_build()
    previous = getattr(_FAST_BUILD, "on", False)
    _FAST_BUILD.on = True
    try:
        yield
    finally:
        _FAST_BUILD.on = previous


def _install_fast_build() -> None:
    import tensorflow as tf
    from keras.src.backend.tensorflow import core
    from keras.src.utils.tracking import DotNotTrackScope
    from keras_hub.src.tokenizers.sentence_piece_tokenizer import SentencePieceTokenizer

    initialize = core.Variable._initialize_with_initializer
    if getattr(initialize, "workbench_fast_build", False):
        return

    def zeros_or_initializer(variable, initializer):
        if not getattr(_FAST_BUILD, "on", False):
            return initialize(variable, initializer)
        shape, dtype = variable._shape, tf.as_dtype(variable._dtype)
        if getattr(_STREAMING, "on", False) and math.prod(shape) * dtype.size >= STREAM_BYTES:
            # Replaced whole by `streamed_weights`: memory that is never touched costs nothing.
            return variable._initialize(lambda: tf.raw_ops.Empty(shape=shape, dtype=dtype, init=False))
        return variable._initialize(lambda: tf.zeros(shape, dtype=dtype))

    set_proto = SentencePieceTokenizer.set_proto

    def set_proto_untracked(tokenizer, proto):
        if not getattr(_FAST_BUILD, "on", False):
            return set_proto(tokenizer, proto)
        with DotNotTrackScope():
            return set_proto(tokenizer, proto)

    zeros_or_initializer.workbench_fast_build = True
    core.Variable._initialize_with_initializer = zeros_or_initializer
    SentencePieceTokenizer.set_proto = set_proto_untracked


class _StoredRows:
    """A large weight in the preset's HDF5 file, not read yet (see `streamed_weights`)."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.shape = tuple(dataset.shape)


@contextmanager
def streamed_weights() -> Iterator[None]:
    """Load preset weights in this thread without ever holding a whole large tensor twice.

    Keras reads each stored tensor whole into a NumPy array, converts it to a tensor and
    assigns it (the 0.67 GB float32 embedding passed through three buffers at once, and
    TensorFlow's oneDNN allocator keeps what it once held). Inside this context tensors of
    `STREAM_BYTES` or more are read from the file `BLOCK_BYTES` of rows at a time and cast to
    the variable's dtype (the same `tf.cast` as `backbone_copy`); the blocks are joined and
    the variable takes the result's buffer (its own, with `skip_random_init`, was never
    touched). Writing the blocks into the variable one by one would hold less, but slice
    assignment puts a variable in TensorFlow's copy-on-read mode: every later read of the
    table then copied it whole. Only this thread is affected.
    """
    with _PATCH_LOCK:
        _install_streamed_weights()
    previous = getattr(_STREAMING, "on", False)
    _STREAMING.on = True
    try:
        yield
    finally:
        _STREAMING.on = previous


def _install_streamed_weights() -> None:
    import h5py
    import tensorflow as tf
    from keras.src.backend.tensorflow import core
    from keras.src.saving import saving_lib

    get = saving_lib.H5IOStore.__getitem__
    if getattr(get, "workbench_streamed", False):
        return

    def get_rows_later(store, key):
        if getattr(_STREAMING, "on", False):
            value = saving_lib.safe_get_h5_dataset(store._h5_entry_group, key)
            if (
                isinstance(value, h5py.Dataset)
                and value.ndim >= 1
                and value.nbytes >= STREAM_BYTES
                and value.attrs.get("dtype") != "bfloat16"  # stored as raw 16-bit words
            ):
                return _StoredRows(value)
        return get(store, key)

    assign = core.Variable.assign

    def assign_rows(variable, value):
        if not isinstance(value, _StoredRows):
            return assign(variable, value)
        if value.shape != tuple(variable.shape):
            raise ValueError(
                f"{variable.path} has shape {tuple(variable.shape)}; the preset stores {value.shape}."
            )
        rows = value.shape[0]
        step = max(1, BLOCK_BYTES * rows // max(1, value.dataset.nbytes))
        target = variable._value  # the tf.Variable
        blocks = [
            tf.cast(value.dataset[start : start + step], target.dtype) for start in range(0, rows, step)
        ]
        whole = tf.concat(blocks, axis=0) if len(blocks) > 1 else blocks[0]
        del blocks
        target.assign(whole)  # a dense assignment adopts the buffer
        return variable

    get_rows_later.workbench_streamed = True
    saving_lib.H5IOStore.__getitem__ = get_rows_later
    core.Variable.assign = assign_rows


@contextmanager
def _native_stderr_quieted() -> Iterator[None]:
    """TensorFlow's C++ start-up notices ("oneDNN custom operations are on", "Could not find
    cuda drivers") ignore TF_CPP_MIN_LOG_LEVEL: catch what file descriptor 2 receives during
    the import and pass on every other line."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (embedded interpreters): nothing to quiet
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode("utf-8", "replace").splitlines(keepends=True):
                if not _is_tensorflow_notice(line):
                    sys.stderr.write(line)


def _is_tensorflow_notice(line: str) -> bool:
    return (
        line.startswith(("I0000 ", "W0000 ", "WARNING: All log messages before absl::InitializeLog()"))
        or "rebuild TensorFlow with the appropriate compiler flags" in line
        or line.startswith("To enable the following instructions:")
    )


def import_tensorflow_quietly() -> None:
    """Import TensorFlow without its C++ start-up notices on stderr (command-line tools, whose
    stderr should hold only their own progress and error lines)."""
    with _native_stderr_quieted():
        import tensorflow  # noqa: F401


def _context_for(causal_lm) -> int:
    name = type(causal_lm).__name__
    return 32768 if name == "Gemma3CausalLM" else 8192


def _wrap(
    causal_lm,
    name: str,
    spec: str,
    context: int | None = None,
    precision: str = "bfloat16",
    only: bool = False,
    other_weights: Callable[[str], Any] | None = None,
) -> LanguageModel:
    model = LanguageModel(
        causal_lm,
        name=name,
        spec=spec,
        max_context=context or _context_for(causal_lm),
        precision=precision,
        only=only,
        other_weights=other_weights,
    )
    if only:
        del causal_lm
        gc.collect()  # a backbone in another dtype was copied: its weights go now (Keras layers are cycles)
    return model


def _from_preset(handle: str, dtype: str | None = None):
    """The preset's causal LM, built without random initial values and with large tensors
    streamed (`skip_random_init`, `streamed_weights`); with ``dtype``, built and loaded
    straight in that dtype, so no copy in the stored dtype is ever made."""
    import keras_hub

    with skip_random_init(), streamed_weights():
        if dtype is None:
            return keras_hub.models.CausalLM.from_preset(handle)
        return keras_hub.models.CausalLM.from_preset(handle, dtype=dtype)


def _later(handle: str, lock=None) -> Callable[[str], Any]:
    """Reads the preset at ``handle`` again in another dtype, when a model first needs it
    (`LanguageModel.forward_for`): a preset is loaded in the precision served, and the other
    precision costs nothing until someone asks for it."""

    def read(dtype: str):
        try:
            with lock() if lock is not None else nullcontext():
                return _from_preset(handle, dtype)
        except Exception as error:
            raise ModelLoadError(f"Could not load the {dtype} weights from {handle}: {error}") from error

    return read


def load_embedded(
    progress: Progress | None = None, precision: str = "bfloat16", only: bool = False
) -> LanguageModel:
    """Load the embedded Gemma 3 270M, converting it first if the cache lacks it.

    The weights' checksums (recorded at conversion) are checked while the preset loads: a
    damaged cache is rebuilt once and the model says why (`LanguageModel.notice`). Any
    other failure to load leaves the cache as it is and raises a `ModelLoadError`.
    ``precision`` and ``only``: see `load_model`."""
    report = progress or (lambda message, fraction: None)
    before = problem(preset_dir())
    notice = None if before in (None, ABSENT) else f"The model cache was {before}; it was rebuilt."
    damaged = None
    for _ in range(2):
        directory = ensure_embedded_preset(progress, damaged=damaged)
        report("Loading Gemma 3 270M from the cache", 0.95)
        causal_lm, error, damaged = _load_checked(directory, precision)
        if damaged is None:
            break
        notice = f"The model cache was {damaged}; it was rebuilt."
        log.warning("%s: %s", directory, notice)
        report(f"The model cache was {damaged}: rebuilding it (about a minute)", 0.0)
    else:
        raise ModelLoadError(f"The rebuilt model cache at {directory} is {damaged}; check the disk.")
    if error is not None:
        raise ModelLoadError(
            f"Could not load the embedded model from {directory} ({type(error).__name__}: {error}); "
            "the cache looks intact and was kept."
        ) from error
    later = _later(str(directory), lambda: reading(directory.parent))
    model = _wrap(causal_lm, EMBEDDED_DISPLAY_NAME, EMBEDDED_SPEC, EMBEDDED_CONTEXT, precision, only, later)
    model.notice = notice
    return model


def _load_checked(directory: Path, dtype: str | None = None):
    """(causal LM or None, the load's exception or None, damage found or None): the preset's
    checksums are computed in a second thread while Keras reads it (in ``dtype`` if given)."""
    with reading(directory.parent), ThreadPoolExecutor(1, thread_name_prefix="checksum") as pool:
        checking = pool.submit(damage, directory)
        causal_lm, error = None, None
        try:
            causal_lm = _from_preset(str(directory), dtype)
        except Exception as caught:  # judged below: damage rebuilds, anything else is reported
            error = caught
        return causal_lm, error, checking.result()


def has_kaggle_credentials() -> bool:
    """True when kagglehub can find credentials (environment or ~/.kaggle)."""
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    if os.environ.get("KAGGLE_API_TOKEN"):
        return True
    config = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    return (config / "kaggle.json").is_file() or (config / "access_token").is_file()


def load_kaggle(preset: str, precision: str = "bfloat16", only: bool = False) -> LanguageModel:
    """Load a KerasHub preset from Kaggle (kagglehub caches it after the first download)."""
    if not preset:
        raise ModelLoadError("Name a Kaggle preset, e.g. kaggle:gemma_instruct_2b_en.")
    try:
        causal_lm = _from_preset(preset, precision)
    except UnsupportedModelError:
        raise
    except Exception as error:  # kagglehub and KerasHub raise many kinds; say which happened
        raise kaggle_error(preset, error) from error
    return _wrap(causal_lm, preset, f"kaggle:{preset}", None, precision, only, _later(preset))


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _http_status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def kaggle_error(preset: str, error: BaseException) -> ModelLoadError:
    """One honest line for a failed Kaggle download: missing credentials, refused credentials
    (401/403), a preset Kaggle does not have (404), the network, or anything else as it is."""
    chain = list(_causes(error))
    names = {type(e).__name__ for e in chain}
    statuses = {status for status in map(_http_status, chain) if status is not None}
    if not has_kaggle_credentials():
        return CredentialsError(
            f"Cannot download '{preset}': no Kaggle credentials. Put kaggle.json in ~/.kaggle/ "
            "(or set KAGGLE_USERNAME and KAGGLE_KEY) and accept the Gemma licence on Kaggle."
        )
    if statuses & {401, 403} or names & {"UnauthenticatedError", "CredentialError"}:
        status = min(statuses & {401, 403}, default=None)
        return CredentialsError(
            f"Kaggle refused to send '{preset}'{f' (HTTP {status})' if status else ''}: check that your "
            "Kaggle credentials are current and that you accepted the Gemma licence on kaggle.com."
        )
    not_found = 404 in statuses or "NotFoundError" in names
    if not_found or any("Unknown preset" in str(e) for e in chain):
        return ModelLoadError(
            f"Kaggle has no preset '{preset}'; check the name (e.g. {', '.join(KAGGLE_PRESETS[:2])})."
        )
    if any(_is_network(e) for e in chain):
        first = str(chain[-1]).splitlines()[0] if str(chain[-1]) else type(chain[-1]).__name__
        return ModelLoadError(
            f"Cannot reach Kaggle to download '{preset}' (network: {first[:160]}); check the "
            "connection, or use a local preset (preset:DIR)."
        )
    return ModelLoadError(f"Could not load Kaggle preset '{preset}': {type(error).__name__}: {error}")


def _is_network(error: BaseException) -> bool:
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    module = type(error).__module__
    if module.startswith(("requests", "urllib3", "http.client")) and _http_status(error) is None:
        return True
    return isinstance(error, OSError) and error.errno in {101, 104, 110, 111, 113, -2, -3}


def load_local_preset(directory: str, precision: str = "bfloat16", only: bool = False) -> LanguageModel:
    """Load a KerasHub preset directory saved with `save_to_preset`."""
    path = Path(directory).expanduser()
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"'{directory}' is not a KerasHub preset directory (no config.json).")
    try:
        task = json.loads((path / "task.json").read_text()) if (path / "task.json").exists() else {}
    except ValueError as error:
        raise ModelLoadError(f"'{directory}/task.json' is not valid JSON: {error}.") from error
    if task and "CausalLM" not in str(task.get("class_name", "")):
        raise UnsupportedModelError(
            f"'{directory}' holds a {task.get('class_name')}; only causal language models can run here."
        )
    try:
        causal_lm = _from_preset(str(path), precision)
    except Exception as error:
        raise ModelLoadError(f"Could not load the preset in '{directory}': {error}") from error
    return _wrap(causal_lm, path.name, f"preset:{path}", None, precision, only, _later(str(path)))


def load_gguf(
    file: str, progress: Progress | None = None, precision: str = "bfloat16", only: bool = False
) -> LanguageModel:
    """Convert a Gemma 3 GGUF file in memory (no cache; with ``only``, float32 then a copy)."""
    from salience.model.gguf_import import convert_gguf

    path = Path(file).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"GGUF file '{file}' does not exist.")
    return _wrap(convert_gguf(path, progress), path.name, f"gguf:{path}", EMBEDDED_CONTEXT, precision, only)


def load_model(
    spec: str | None = None, progress: Progress | None = None, precision: str = "bfloat16", only: bool = False
) -> LanguageModel:
    """Load the model a spec names; see the module docstring for the forms.

    ``precision`` is the model's default compute precision; a preset is built and read
    straight in that dtype (the same values as a cast copy). By default the other precision is
    available too: a preset reads its weights again in that dtype on first use, a GGUF model
    (converted in float32) gets a cast copy. With ``only=True`` the model holds ``precision``'s
    weights and nothing else, and a call at the other precision gets an `InputError` (for a
    server replica that serves one precision).

    Args:
        spec: a preset name, ``gguf:PATH``, a KerasHub preset directory, or None (the embedded
            Gemma 3 270M).
        progress: called with ``(message, fraction)`` as the load goes.
        precision: "bfloat16" or "float32".
        only: hold only ``precision``'s weights.

    Returns:
        The loaded `LanguageModel` (an `EngineCalls`).

    Example:
        >>> model = load_model(None)  # doctest: +SKIP
        >>> model.generate("Keras is").text  # doctest: +SKIP
    """
    if precision not in PRECISIONS:
        raise InputError(f"Unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}.")
    spec = (spec or "embedded").strip()
    kind, _, value = spec.partition(":")
    if spec in ("embedded", EMBEDDED_SPEC) or kind == "embedded":
        return load_embedded(progress, precision, only)
    if kind == "kaggle":
        return load_kaggle(value.strip(), precision, only)
    if kind == "preset":
        return load_local_preset(value.strip(), precision, only)
    if kind == "gguf" or spec.endswith(".gguf"):
        return load_gguf(value.strip() if kind == "gguf" else spec, progress, precision, only)
    if Path(spec).expanduser().is_dir():
        return load_local_preset(spec, precision, only)
    if spec in KAGGLE_PRESETS or spec.startswith(("gemma_", "gemma2_", "gemma3_")):
        return load_kaggle(spec, precision, only)
    raise ModelLoadError(f"Unknown model '{spec}'. {SPEC_HELP}")
