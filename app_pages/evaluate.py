"""Evaluate: run 1–4 template variants over a table of inputs with checks; pass rates with
intervals, flipped rows first, and which template part drove each row's output."""

from __future__ import annotations

import streamlit as st

from components import state
from components.blind_review import create_form
from components.evaluation import (
    exports,
    grid,
    opened_evaluation,
    progress,
    row_details,
    saved_list,
    setup,
    step,
    summary,
    why_chart,
)
from components.sidebar import model_sidebar
from components.widgets import plain_markdown
from components.workspace import autosaved


@autosaved
def page() -> None:
    model = model_sidebar()
    st.title("Evaluate a prompt across many inputs")
    st.caption(
        "Run template variants over a table of inputs, score each output with checks, and see which template "
        "part drove the outputs that pass and fail. Every finished row is saved as it completes."
    )
    new, saved = st.tabs(["Evaluation", "Saved evaluations"])
    with saved:
        saved_list()
    with new:
        message = state.evaluate().message
        if message:
            st.error(message[1], icon="⚠️")
        stored = opened_evaluation()
        if stored is None:
            setup(model)
            return
        st.subheader(plain_markdown(stored.name))
        if st.button("New evaluation", key=state.EVAL_NEW):
            state.evaluate().open_id = None
            st.rerun()
        progress(stored)
        summary(stored)
        grid(stored)
        row_details(stored, model)
        if stored.cells and any(cell.shares for cell in stored.cells):
            st.subheader("Why, across the dataset")
            st.caption(
                "Each template part's share of the salience for the explained output part, one dot per row, "
                "coloured by whether the row passed."
            )
            why_chart(stored)
        exports(stored)
        create_form(stored)
    if stored is not None and step(stored, model):
        st.rerun()


page()
