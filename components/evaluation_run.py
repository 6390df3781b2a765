"""A running evaluation: the opened one, its progress, and one step of its work per script run."""

from __future__ import annotations

import streamlit as st

from components import state
from components.session_work import stop_check
from components.workspace import workspace
from salience.core.errors import WorkbenchError
from salience.core.text import plain_duration
from salience.core.types import GenerationSettings
from salience.evaluation.runs import (
    rows_per_chunk,
    run_evaluation,
    unserved_precision,
)
from salience.prompts.variant_comparison import TargetChoice
from workspace.evaluations import (
    StoredEvaluation,
    load_evaluation,
    record_cell,
    set_status,
)


# ---- running ----------------------------------------------------------------------------------
def _cancel(evaluation_id: int) -> None:
    opened = workspace()
    if opened is not None:
        set_status(opened, evaluation_id, "cancelled")


def _resume(evaluation_id: int) -> None:
    opened = workspace()
    if opened is not None:
        set_status(opened, evaluation_id, "running")


def opened_evaluation() -> StoredEvaluation | None:
    evaluation_id = state.evaluate().open_id
    opened = workspace()
    if evaluation_id is None or opened is None:
        return None
    try:
        return load_evaluation(opened, evaluation_id)
    except WorkbenchError as error:
        state.evaluate().open_id = None
        st.error(str(error), icon="⚠️")
        return None


def progress(stored: StoredEvaluation) -> None:
    """Progress with time left and Cancel (or Resume), then one more batch while it runs."""
    done, total = len(stored.done), stored.plan.size
    seconds = [cell.seconds for cell in stored.cells if cell.seconds > 0]
    left = (total - done) * (sum(seconds) / len(seconds)) if seconds else None
    if stored.status == "running" and done < total:
        eta = f" · about {plain_duration(left)} left" if left is not None else ""
        st.progress(done / total if total else 1.0, text=f"{done} of {total} generations done{eta}")
        st.button("Cancel", key=state.EVAL_CANCEL, on_click=_cancel, args=(stored.id,))
    elif done < total:
        st.progress(
            done / total, text=f"Cancelled after {done} of {total} generations; finished rows are kept."
        )
        st.button("Resume", key=state.EVAL_RESUME, on_click=_resume, args=(stored.id,))


def step(stored: StoredEvaluation, model) -> bool:
    """Run the next batch and commit each cell; True when the page should rerun for more."""
    if stored.status != "running":
        return False
    opened = workspace()
    if stored.finished:
        if opened is not None:
            set_status(opened, stored.id, "finished")
        return False
    if model is None or opened is None:
        st.info("Waiting for the model to continue the evaluation.")
        return False
    options = stored.options
    refused = unserved_precision(model, options.get("precision"))
    if refused:
        st.error(refused, icon="⚠️")
        return False
    settings = GenerationSettings(
        max_new_tokens=int(options.get("max_new_tokens") or 40),
        stop_sequences=tuple(options.get("stop_sequences") or ()),
    )
    target = options.get("target")
    target = TargetChoice(target["mode"], target["text"]) if target else None
    batch = int(options.get("batch_size") or 8)
    cells = run_evaluation(
        stored.plan,
        model,
        settings,
        done=stored.done,
        batch_size=batch,
        target=target,
        cancelled=stop_check(),
        precision=options.get("precision"),
    )
    for produced, cell in enumerate(cells, start=1):
        record_cell(opened, stored.id, cell)
        if produced >= rows_per_chunk(model, batch):  # an engine runs a batch on each replica
            break
    return True
