"""Keep the shared model's compiled graphs alive across Streamlit reruns.

Before every script run Streamlit calls ``keras.backend.clear_session()``
(``script_runner._clean_problem_modules``), which clears TensorFlow's kernel and
function caches. Our model is one long-lived object shared by every session, so
each rerun then paid ~3 s to re-instantiate the salience and decoding graphs
(measured: a click went from 0.6 s of compute to ~6 s). We replace that hook with
one that still closes matplotlib figures but leaves Keras alone.
"""

from __future__ import annotations

import contextlib
import sys

from streamlit.runtime.scriptrunner import script_runner


def _clean_matplotlib_only() -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        with contextlib.suppress(Exception):  # same tolerance as Streamlit's own hook
            plt.close("all")


def keep_keras_state() -> None:
    """Stop Streamlit from clearing the Keras session between reruns (idempotent)."""
    if hasattr(script_runner, "_clean_problem_modules"):
        script_runner._clean_problem_modules = _clean_matplotlib_only
