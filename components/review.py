"""Review notes: a reviewer's thumbs and free text on a run or a saved comparison."""

from __future__ import annotations

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from components import state
from components.signin import current_author
from components.widgets import plain_markdown
from salience.core.errors import InputError
from workspace.store import Workspace


def review_box(opened: Workspace, run_id: int | None = None, comparison_id: str | None = None) -> None:
    """The notes left so far, newest last, and a form to add one as the sidebar's reviewer."""
    subject = f"run_{run_id}" if run_id is not None else f"comparison_{comparison_id}"
    st.markdown("**Review**")
    for note in opened.notes(run_id=run_id, comparison_id=comparison_id):
        thumb = {1: "👍 ", -1: "👎 ", None: ""}[note.rating]
        st.markdown(
            f"{thumb}**{plain_markdown(note.reviewer)}** · {note.created_at.astimezone():%Y-%m-%d %H:%M}  \n"
            + plain_markdown(note.text)
        )
    reviewer = st.session_state.get(state.REVIEWER, "").strip()
    with st.form(f"note_form_{subject}", clear_on_submit=True, border=True):
        st.caption(
            f"As **{plain_markdown(reviewer)}**" if reviewer else "Type your name in the sidebar first."
        )
        rating = st.feedback("thumbs", key=f"{state.NOTE_RATING}_{subject}")
        text = st.text_area("Note", key=f"{state.NOTE_TEXT}_{subject}", height=80, max_chars=20_000)
        if st.form_submit_button("Save note", disabled=not reviewer):
            thumbs = None if rating is None else (1 if rating == 1 else -1)
            try:
                opened.add_note(
                    reviewer, text, thumbs, run_id=run_id, comparison_id=comparison_id, by=current_author()
                )
            except InputError as error:
                st.error(str(error), icon="⚠️")
            except SQLAlchemyError as error:
                st.error(f"The note could not be saved ({type(error).__name__}); try again.", icon="⚠️")
            else:
                st.rerun()
