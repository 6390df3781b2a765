"""Review: the reviewer's page of a blind side-by-side review (``/review?r=ID``), and its results
(``&view=results``). Reached by link and from History; not in the navigation."""

from __future__ import annotations

import streamlit as st

from components import state
from components.blind_review import results_view, reviewer_view
from components.review_why import explain
from components.workspace import autosaved, workspace
from salience.core.errors import InputError
from workspace.reviews import find_review, load_review


@autosaved
def page() -> None:
    key = st.query_params.get("r", "")
    opened = workspace()
    if opened is None:
        st.error(
            st.session_state[state.WORKSPACE_ERROR] or "The reviews cannot be opened right now.", icon="⚠️"
        )
        return
    try:
        review = load_review(opened, find_review(opened, key)) if key else None
    except InputError as error:
        st.title("Review")
        st.error(str(error), icon="⚠️")
        return
    if review is None:
        st.title("Review")
        st.info("Open a review from the link you were sent, or from History → Reviews.", icon="ℹ️")
        return
    if st.query_params.get("view") == "results":
        results_view(review)
    else:
        reviewer_view(review, explain)


page()
