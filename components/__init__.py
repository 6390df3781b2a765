"""Streamlit-facing pieces: state keys, the cached model, the heatmap component, shared widgets."""
