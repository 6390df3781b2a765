"""Gemma prompt workbench: `streamlit run app.py` (or `streamlit run serve.py`, which starts the
model with the server); `-- --engine URL` uses an engine deployment instead of a model here."""

import sys

import streamlit as st

import salience  # noqa: F401  (configures Keras and TensorFlow before they load; imports neither)
from components.deletion import stop_other_pages
from components.exposure import announce, reach_caption
from components.model_resource import engine_from_args, page_drawn, page_started, preload
from components.runtime_fixes import keep_keras_state
from components.signin import identity_sidebar, require_sign_in


def main() -> None:
    page_started()  # a model load starting now lets this page draw first
    keep_keras_state()
    announce()  # once per server: reachable from other machines? sign-in on?
    st.set_page_config(page_title="Gemma prompt workbench", page_icon="🔎", layout="wide")
    identity = require_sign_in()  # with [auth]: a visitor not signed in gets the sign-in page only
    engine_from_args(sys.argv[1:])  # `streamlit run app.py -- --engine URL`: the model runs there
    preload()  # load and warm the default model in the background now; no page waits for it

    pages = [
        st.Page("app_pages/workbench.py", title="Workbench", icon="🔎", default=True),
        st.Page("app_pages/compare.py", title="Compare", icon="⚖️", url_path="compare"),
        st.Page("app_pages/evaluate.py", title="Evaluate", icon="🧪", url_path="evaluate"),
        st.Page("app_pages/history.py", title="History", icon="🗂️", url_path="history"),
        st.Page("app_pages/review.py", title="Review", icon="⚖️", url_path="review", visibility="hidden"),
    ]
    try:
        page = st.navigation(pages)
        reach_caption()
        identity_sidebar(identity)
        stop_other_pages()  # Deletion runs of a page this session has left stop now
        page.run()
    finally:
        page_drawn()  # the model's loader waits for the first page (they share one interpreter lock)


# Streamlit runs this file as "__main__" (and leaves it in sys.modules["__main__"]). A process
# started with multiprocessing's "spawn" re-imports that module as "__mp_main__": it must not
# start the app (or a model load) there.
if __name__ == "__main__":
    main()
