"""Gemma prompt workbench engine: generation and sequence salience (no Streamlit here).

Importing the package selects the TensorFlow backend for Keras and quiets
TensorFlow's start-up notices, so it must come before any `import keras`.
Heavy imports (TensorFlow, KerasHub) happen in `salience.model.loader` and
`salience.model.forward`; the template, segment and sample modules are pure Python.
"""

from salience.model.backend import configure

configure()

__version__ = "0.1.0"
