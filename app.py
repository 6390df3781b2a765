"""Gemma prompt workbench: `streamlit run app.py` (or `streamlit run serve.py`, which starts the
model with the server)."""

import streamlit as st

import salience  # noqa: F401  (configures Keras and TensorFlow before they load)
from components.model_resource import page_drawn, preload
from components.runtime_fixes import keep_keras_state


def main() -> None:
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


# Streamlit runs this file as "__main__" (and leaves it in sys.modules["__main__"]). A process
# started with multiprocessing's "spawn" re-imports that module as "__mp_main__": it must not
# start the app (or a model load) there.
if __name__ == "__main__":
    main()
