"""History: every run, explanation and template version, searchable; notes and ratings."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pandas as pd
import streamlit as st

from components import state
from components.blind_review import review_list
from components.diff_view import diff_html
from components.evaluation import saved_list
from components.heatmap import heatmap
from components.review import review_box
from components.sidebar import model_sidebar
from components.signin import current_identity, may_delete
from components.widgets import ENGINEER_DETAILS, STOP_REASONS, plain_markdown
from components.workspace import autosaved, load_into_workbench, workspace
from salience.attribution.methods import get_method
from salience.core.errors import InputError
from salience.core.text import escape_braces, excerpt, plain_duration
from salience.prompts.segments import GRANULARITIES
from salience.prompts.variant_comparison import output_diff
from salience.report.views import heatmap_view, readout
from workspace.store import MAX_IMPORT_BYTES, RunFilter, RunRow, Workspace, import_summary

RATINGS = {"any": "Any rating", "up": "👍 rated up", "down": "👎 rated down", "unrated": "Not rated"}
WORKBENCH = "app_pages/workbench.py"
RUN_QUERY = "run"  # ?run=ID opens a run (the address of a selected run can be shared)


def _rating_text(total: int | None) -> str:
    """The sum of thumbs as a reviewer reads it: '👍 +2', '👎 -1', blank when unrated or even."""
    total = total or 0
    return f"👍 +{total}" if total > 0 else f"👎 {total}" if total < 0 else ""


def _filters(opened: Workspace) -> RunFilter:
    cols = st.columns([3, 2, 2, 2])
    text = cols[0].text_input("Search prompts and outputs", key=state.HISTORY_SEARCH, persist_state="session")
    template = cols[1].selectbox(
        "Template",
        [None, *opened.template_names()],
        key=state.HISTORY_TEMPLATE,
        format_func=lambda v: v or "All",
    )
    variable = cols[2].text_input(
        "A variable's value contains", key=state.HISTORY_VARIABLE, persist_state="session"
    )
    model = cols[3].selectbox(
        "Model", [None, *opened.models()], key=state.HISTORY_MODEL, format_func=lambda v: v or "All"
    )
    cols = st.columns([3, 2, 2])
    dates = cols[0].date_input("Between", value=(), key=state.HISTORY_DATES, format="YYYY-MM-DD")
    rating = cols[1].selectbox("Rating", list(RATINGS), key=state.HISTORY_RATING, format_func=RATINGS.get)
    with cols[2]:
        st.write("")
        with_notes = st.checkbox(
            "Only runs with notes", key=state.HISTORY_WITH_NOTES, persist_state="session"
        )
    since = until = None
    if isinstance(dates, tuple | list) and dates:
        since = datetime.combine(dates[0], time.min, UTC)
        until = datetime.combine(dates[-1], time.max, UTC)
    return RunFilter(
        text=text.strip(),
        template=template,
        variable_value=variable.strip(),
        model=model,
        since=since,
        until=until,
        rating=None if rating == "any" else rating,
        with_notes=with_notes,
    )


def _runs_tab(opened: Workspace) -> None:
    terms = _filters(opened)
    runs = opened.runs(terms)
    if not runs:
        st.info("No runs match. Runs appear here as soon as you press Generate on the Workbench or Compare.")
        _selected_run(opened)
        return
    frame = pd.DataFrame(
        [
            {
                "when": run.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                "template": run.template or "—",
                "output": excerpt(run.output, 80),
                "model": run.model,
                "rating": _rating_text(run.rating),
                "notes": run.notes,
                "seconds": round(run.seconds, 2),
            }
            for run in runs
        ]
    )
    st.caption(f"{len(runs)} runs, newest first. Select one to see it again.")
    event = st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key=state.HISTORY_TABLE,
        column_config={"rating": st.column_config.TextColumn("rating", width="small")},
    )
    rows = event.selection.rows if event and event.selection else []
    cols = st.columns(3)
    cols[2].download_button(
        f"These {len(runs)} runs (JSONL)",
        lambda: opened.export_jsonl(run_ids=[run.id for run in runs]),
        "runs.jsonl",
        "application/json",
        width="stretch",
        help="The runs this search found, with their template versions, explanations and notes.",
    )
    cols[0].download_button(
        "Runs with notes (JSONL)",
        lambda: opened.export_jsonl(notes_only=True),
        "runs-with-notes.jsonl",
        "application/json",
        width="stretch",
    )
    cols[1].download_button(
        "Runs with notes (CSV)",
        lambda: _notes_csv(opened),
        "runs-with-notes.csv",
        "text/csv",
        width="stretch",
    )
    if rows:
        st.query_params[RUN_QUERY] = str(runs[rows[0]].id)
    _selected_run(opened)


def _selected_run(opened: Workspace) -> None:
    """The run named in the address (``?run=ID``), if any."""
    wanted = st.query_params.get(RUN_QUERY)
    if wanted:
        try:
            run = opened.run(int(wanted))
        except (InputError, ValueError):
            st.error(f"There is no run '{plain_markdown(excerpt(wanted, 20))}' in this workspace.", icon="⚠️")
            return
        _run_detail(opened, run)


def _notes_csv(opened: Workspace) -> str:
    rows = opened.noted_runs()
    return pd.DataFrame(rows).to_csv(index=False) if rows else "run,reviewer,rating,note\n"


def _run_detail(opened: Workspace, run: RunRow) -> None:
    st.divider()
    st.subheader(f"Run {run.id} · {plain_markdown(run.template or 'no template')}")
    stopped = STOP_REASONS.get(run.stop_reason, "")
    by = f" · by {plain_markdown(run.author.name)}" if run.author.sub and run.author.name else ""
    st.caption(
        f"{run.created_at.astimezone():%Y-%m-%d %H:%M:%S} · {plain_markdown(run.model)} · written in "
        f"{plain_duration(run.seconds)}" + (f" · {stopped}" if stopped else "") + by
    )
    with st.expander(ENGINEER_DETAILS):
        st.caption(
            f"{run.tokens} tokens in {run.seconds:.1f} s · stop reason: {plain_markdown(str(run.stop_reason))} · "
            f"at most {run.settings.get('max_new_tokens')} new tokens"
        )
    if st.button("Open in the workbench", type="primary", help="Loads this prompt, its values and settings."):
        template = opened.version(run.version_id) if run.version_id else None
        if template is None:  # no template saved (an imported run): the rendered prompt, braces escaped
            prompt = escape_braces(run.prompt)
            load_into_workbench(run.template or "restored run", prompt, {}, run.settings)
        else:
            load_into_workbench(run.template or template.template, template.text, run.variables, run.settings)
        st.switch_page(WORKBENCH)
    _delete_run_button(opened, run)
    saved = opened.salience_for_run(run.id)
    if not saved:
        cols = st.columns(2)
        cols[0].markdown("**Prompt**")
        cols[0].code(run.prompt, language=None, wrap_lines=True)
        cols[1].markdown("**Output**")
        cols[1].code(run.output, language=None, wrap_lines=True)
        st.caption("No explanation was computed for this run.")
    else:
        _saved_heatmap(saved)
    review_box(opened, run_id=run.id)


def _delete_run_button(opened: Workspace, run: RunRow) -> None:
    """Delete the run (its explanations and notes too): its author and admins may; others see the
    button greyed out with the reason."""
    allowed, reason = may_delete(run.author, "run")
    if st.button(
        "Delete run",
        key=state.child_key(state.HISTORY_DELETE_RUN, run.id),
        disabled=not allowed,
        help=plain_markdown(reason) if reason else "Deletes this run, its explanations and its notes.",
    ):
        try:
            opened.delete_run(run.id, current_identity())
        except InputError as error:
            st.error(str(error), icon="⚠️")
            return
        st.query_params.pop(RUN_QUERY, None)
        st.session_state.pop(state.HISTORY_TABLE, None)  # the selection would point at another run
        st.rerun()


def _saved_heatmap(saved) -> None:
    saved = sorted(saved, key=lambda item: item.created_at, reverse=True)  # the latest explanation first
    labels = [
        f"“{excerpt(item.target_text.strip(), 60)}” · {item.created_at.astimezone():%H:%M:%S}"
        for item in saved
    ]
    index = st.selectbox(
        "Explanation", range(len(saved)), key=state.HISTORY_SALIENCE, format_func=labels.__getitem__
    )
    item = saved[index]
    methods = list(item.result.scores)
    cols = st.columns(2)
    method = cols[0].radio("Method", methods, format_func=lambda m: get_method(m).label, horizontal=True)
    granularity = cols[1].selectbox(
        "Granularity", [g for g in GRANULARITIES if g not in ("slots", "regex")], index=2
    )
    result = item.result
    view = heatmap_view(result.text, result.offsets, result.prompt_length, granularity, method, result)
    heatmap(
        view.cells(result.prompt_length),
        method=method,
        signed=view.signed,
        scale=view.scale,
        intensity=1.0,
        selection=view.target_span,
        status=f"Explaining “{result.target_text.strip()}” · {get_method(method).label} · {granularity} "
        "(saved scores, nothing recomputed)",
        stale=False,
        key=state.HISTORY_HEATMAP,
        on_select=lambda: None,
        click_hint="Saved result: open the run in the workbench to explain another part",
    )
    st.markdown(f"**Reading:** {plain_markdown(readout(view, result))}")
    with st.expander(ENGINEER_DETAILS):
        st.caption(
            "Computed with " + plain_markdown(result.provenance.describe(lambda m: get_method(m).label))
        )


def _versions_tab(opened: Workspace) -> None:
    names = opened.template_names()
    if not names:
        st.info("No template versions yet: they are saved as you edit on the Workbench.")
        return
    name = st.selectbox("Template", names, key=state.HISTORY_DIFF_TEMPLATE)
    versions = opened.versions(name)
    # Numbered from the oldest (version 1) by the order they were saved: a number never repeats.
    labels = {
        v.id: f"version {len(versions) - i} · {v.created_at.astimezone():%Y-%m-%d %H:%M:%S}"
        + (f" · {v.author}" if v.author else "")
        for i, v in enumerate(versions)
    }
    _versions_table(versions, labels)
    ids = [v.id for v in versions]
    if len(ids) == 1:
        st.info("This template has one version so far: edit it on the Workbench to compare versions.")
        a = b = ids[0]
    else:
        cols = st.columns(2)
        a = cols[0].selectbox("Older", ids, index=1, key=state.HISTORY_VERSION_A, format_func=labels.get)
        b = cols[1].selectbox("Newer", ids, index=0, key=state.HISTORY_VERSION_B, format_func=labels.get)
    old, new = opened.version(a), opened.version(b)
    changed = _version_diff(old, new, a, b, labels, len(ids))
    for key in sorted(changed):
        before, after = (plain_markdown(str(v.variables.get(key, "—"))) for v in (old, new))
        st.markdown(f"`{plain_markdown(key)}`: “{before}” → “{after}”")
    for version in (old, new) if a != b else (new,):
        if st.button(
            f"Restore {labels[version.id]} into the workbench",
            key=state.child_key(state.HISTORY_RESTORE, version.id),
        ):
            load_into_workbench(version.template, version.text, version.variables)
            st.switch_page(WORKBENCH)


def _versions_table(versions, labels: dict) -> None:
    """The template's versions, newest first: label, first line and values."""
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "version": labels[v.id],
                    "first line": excerpt(v.text.split("\n")[0], 90),
                    "variables": ", ".join(f"{k}={excerpt(str(x), 30)}" for k, x in v.variables.items()),
                }
                for v in versions
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def _version_diff(old, new, a, b, labels: dict, count: int) -> set[str]:
    """What changed in the template text between versions ``a`` and ``b``; returns the names of the
    variables whose values changed."""
    changed = {
        k for k in set(old.variables) | set(new.variables) if old.variables.get(k) != new.variables.get(k)
    }
    if a == b:
        if count > 1:
            st.caption(
                f"Both sides show {plain_markdown(labels[a])}: pick two different versions to see what changed."
            )
    elif old.text == new.text:
        st.caption(
            f"The template text of {plain_markdown(labels[a])} and {plain_markdown(labels[b])} is the same"
            + ("; only the values below changed." if changed else ".")
        )
    else:
        diff = output_diff(old.text, new.text, labels[a], labels[b])
        st.html(diff_html(diff, "template-diff"))
        st.caption(plain_markdown(diff.summary.replace("outputs", "templates")))
    return changed


def _comparisons_tab(opened: Workspace) -> None:
    saved = opened.comparisons()
    if not saved:
        st.info("No saved comparisons yet: press **Create link** on the Compare page to save one.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "saved": row.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                    "variants": " · ".join(row.variants) or "—",
                    "notes": row.notes,
                    "link": f"compare?c={row.id}",
                }
                for row in saved
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={"link": st.column_config.LinkColumn("open", display_text="open on Compare")},
    )
    st.caption("Open one to see it again, add a note or present it.")


def _transfer_tab(opened: Workspace) -> None:
    st.download_button(
        "Export the whole workspace (JSONL)",
        lambda: opened.export_jsonl(),
        "workspace.jsonl",
        "application/json",
        help="Templates and versions, runs, explanations, comparisons and notes; one JSON object per line.",
    )
    identity = current_identity()
    if identity is not None and not identity.admin:
        st.caption(
            "Only admins can import here: an export says who made each record, so an import could "
            "put records under anyone's name."
        )
        return
    upload = st.file_uploader(
        "Import a workspace export (JSONL)",
        type=["jsonl", "json", "txt"],
        max_upload_size=MAX_IMPORT_BYTES // 1_000_000,
    )
    if upload is not None and st.button("Import", type="primary"):
        try:
            counts = opened.import_jsonl(upload.getvalue())
        except InputError as error:  # one line per bad row
            lines = [plain_markdown(line) for line in str(error).splitlines()]
            st.error(
                f"{plain_markdown(upload.name)}: nothing was imported.\n\n"
                + "\n".join(f"- {x}" for x in lines),
                icon="⚠️",
            )
        else:
            st.success(import_summary(counts))


@autosaved
def page() -> None:
    model_sidebar()
    st.title("History")
    st.caption("Everything you edit, generate and explain is saved here, for you and your team.")
    opened = workspace()
    if opened is None:
        st.error(st.session_state[state.WORKSPACE_ERROR] or "The workspace is not available.", icon="⚠️")
        return
    runs, versions, comparisons, evaluated, reviewed, transfer = st.tabs(
        ["Runs", "Template versions", "Comparisons", "Evaluations", "Reviews", "Import / export"]
    )
    with runs:
        _runs_tab(opened)
    with versions:
        _versions_tab(opened)
    with comparisons:
        _comparisons_tab(opened)
    with evaluated:
        saved_list(open_page="app_pages/evaluate.py")
    with reviewed:
        review_list()
    with transfer:
        _transfer_tab(opened)


page()
