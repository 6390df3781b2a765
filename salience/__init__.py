"""Gemma prompt workbench engine: generation and sequence salience (no Streamlit here).

Heavy imports (TensorFlow, KerasHub) happen in `salience.loading` and
`salience.forward`; the template, segment and sample modules are pure Python.
"""

__version__ = "0.1.0"
