"""Set the Keras backend and quiet TensorFlow before anything imports keras."""

from __future__ import annotations

import os


def configure() -> None:
    """Choose TensorFlow for Keras and silence its start-up notices (idempotent)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("KAGGLEHUB_VERBOSITY", "error")
