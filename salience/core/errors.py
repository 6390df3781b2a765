"""Errors a user can act on. Each carries one line saying what went wrong and what to do."""

from __future__ import annotations


class WorkbenchError(Exception):
    """A problem caused by input or environment, with a message meant for the user."""


class InputError(WorkbenchError):
    """Bad prompt, target, span, file or option."""


class ModelLoadError(WorkbenchError):
    """A model spec that cannot be resolved or loaded."""


class CredentialsError(ModelLoadError):
    """Kaggle credentials are missing or the network is unreachable."""


class UnsupportedModelError(ModelLoadError):
    """A model class that this tool cannot explain."""


class ContextLengthError(InputError):
    """Prompt plus target does not fit the model's context."""


class CancelledError(WorkbenchError):
    """A long computation stopped because its caller no longer needs it."""


class EngineAccessError(ModelLoadError):
    """The engine refused this client's token (missing or wrong)."""
