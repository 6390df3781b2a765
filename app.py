"""Gemma prompt workbench: `streamlit run app.py`."""

import streamlit as st

import salience  # noqa: F401  (configures Keras and TensorFlow before they load)
from components.model_resource import page_drawn, preload
from components.runtime_fixes import keep_keras_state

keep_keras_state()
preload()  # load and warm the default model in the background now; no page waits for it

st.set_page_config(page_title="Gemma prompt workbench", page_icon="🔎", layout="wide")

pages = [
    st.Page("app_pages/workbench.py", title="Workbench", icon="🔎", default=True),
    st.Page("app_pages/compare.py", title="Compare", icon="⚖️", url_path="compare"),
    st.Page("app_pages/evaluate.py", title="Evaluate", icon="🧪", url_path="evaluate"),
    st.Page("app_pages/history.py", title="History", icon="🗂️", url_path="history"),
]
try:
    st.navigation(pages).run()
finally:
    page_drawn()  # the model's loader waits for the first page (they share one interpreter lock)
