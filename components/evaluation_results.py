"""An evaluation's results: the summary, the grid, one row's details and why, the chart of
Deletion's shares, the exports, and the list of saved evaluations.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from components import state
from components.session_work import stop_check
from components.signin import current_identity, may_delete
from components.widgets import ENGINEER_DETAILS, plain_markdown
from components.workspace import load_into_workbench, workspace
from salience.core.errors import WorkbenchError
from salience.evaluation.runs import (
    Plan,
    deletion_shares,
    export_csv,
    export_jsonl,
    flips,
    report_html,
    row_order,
    share_rows,
    summarize,
)
from salience.prompts.variant_comparison import TargetChoice
from workspace.evaluations import (
    StoredEvaluation,
    delete_evaluation,
    evaluations,
)

WORKBENCH = "app_pages/workbench.py"


# ---- results ----------------------------------------------------------------------------------
def summary(stored: StoredEvaluation) -> None:
    plan, cells = stored.plan, list(stored.cells)
    summaries = summarize(plan, cells)
    rows = [
        {
            "Variant": s.name,
            "Passed": f"{s.passed} / {s.total}" if s.total else "not run yet",
            "Pass rate": f"{s.rate:.0%}" if s.total else "not run yet",
            "Likely range of the pass rate": (
                f"{s.interval[0]:.0%} – {s.interval[1]:.0%}" if s.total else "not run yet"
            ),
        }
        for s in summaries
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(
        "Likely range: with so few rows the true pass rate is probably (19 times in 20) inside it; "
        "more rows narrow it."
    )
    with st.expander(ENGINEER_DETAILS):
        st.caption(
            "The likely range is the 95% Wilson score interval. "
            + " · ".join(plain_markdown(s.describe()) for s in summaries if s.total)
        )
    found = flips(plan, cells)
    if found:
        st.markdown(f"**{len(found)} flipped row(s)** — did the change break something?")
        st.markdown("\n".join(f"- {plain_markdown(f.describe(plan))}" for f in found))
    elif len(plan.variants) > 1 and cells:
        st.caption("No row flips between the variants so far.")


def grid(stored: StoredEvaluation) -> None:
    plan, cells = stored.plan, list(stored.cells)
    by_key = {(c.row, c.variant): c for c in cells}
    flipped = {f.row for f in flips(plan, cells)}
    records = []
    for row in row_order(plan, cells):
        record = {"row": row + 1, "flip": "⇄" if row in flipped else ""}
        record.update(plan.dataset.rows[row])
        for index, variant in enumerate(plan.variants):
            cell = by_key.get((row, index))
            record[variant.name] = "…" if cell is None else "✅ pass" if cell.passed else "❌ fail"
        records.append(record)
    st.dataframe(pd.DataFrame(records), hide_index=True, width="stretch", height=320)


def row_details(stored: StoredEvaluation, model) -> None:
    """Each row's outputs on expand, Deletion on demand, and a button to open it in the workbench."""
    plan, cells = stored.plan, list(stored.cells)
    by_key = {(c.row, c.variant): c for c in cells}
    order = [r for r in row_order(plan, cells) if any((r, v) in by_key for v in range(len(plan.variants)))]
    if not order:
        return
    choice = st.selectbox(
        "Row to inspect",
        order,
        format_func=lambda r: f"Row {r + 1}: " + " · ".join(plan.dataset.rows[r].values())[:90],
        key=state.child_key(state.EVAL_ROW, stored.id),
    )
    columns = st.columns(len(plan.variants))
    for index, (column, variant) in enumerate(zip(columns, plan.variants)):
        cell = by_key.get((choice, index))
        with column:
            st.markdown(
                f"**{plain_markdown(variant.name)}** — "
                + ("not run yet" if cell is None else "✅ pass" if cell.passed else "❌ fail")
            )
            if cell is None:
                continue
            st.code(cell.error or cell.output or "(empty output)", language=None, wrap_lines=True)
            for check, ok, why in zip(plan.checks, cell.checks, cell.details or ("",) * len(cell.checks)):
                st.caption(
                    f"{'✅' if ok else '❌'} {plain_markdown(check.label)}"
                    + (f" ({plain_markdown(why)})" if why else "")
                )
            if cell.shares:
                top = sorted(cell.shares.items(), key=lambda kv: -kv[1])[:3]
                st.caption("Drove it most: " + ", ".join(f"{plain_markdown(k)} {v:.0%}" for k, v in top))
            key = f"{stored.id}:{choice}:{index}"
            deletion = state.evaluate().deletion.get(key)
            if deletion is None and cell.output.strip() and model is not None:
                if st.button(
                    "Check with Deletion",
                    key=state.child_key(state.EVAL_ROW_DELETION, key),
                    help="Deletes each template part in turn (slower).",
                ):
                    state.evaluate().deletion[key] = _deletion(
                        model, plan, choice, index, cell.output, stored
                    )
                    st.rerun()
            elif deletion:
                st.caption("Deletion: " + ", ".join(f"{plain_markdown(k)} {v:.0%}" for k, v in deletion[:3]))
            if st.button("Open in the workbench", key=state.child_key(state.EVAL_ROW_OPEN, key)):
                load_into_workbench(
                    variant.name,
                    variant.template,
                    plan.values(choice, index),
                    {
                        "max_new_tokens": stored.options.get("max_new_tokens"),
                        "stop_sequences": stored.options.get("stop_sequences"),
                    },
                )
                st.switch_page(WORKBENCH)


def _deletion(model, plan: Plan, row: int, variant: int, output: str, stored: StoredEvaluation):
    target = stored.options.get("target") or {"mode": "output", "text": ""}
    try:
        shares = deletion_shares(
            model,
            plan.rendered(row, variant),
            output,
            TargetChoice(target["mode"], target["text"]),
            cancelled=stop_check(),
        )
    except WorkbenchError as error:
        st.error(str(error), icon="⚠️")
        return []
    return sorted((shares or {}).items(), key=lambda kv: -kv[1])


def why_chart(stored: StoredEvaluation) -> None:
    """Each template part's share per row, per variant: a box plot with the rows as dots, split by outcome."""
    rows = share_rows(stored.plan, stored.cells)
    if not rows:
        return
    frame = pd.DataFrame(rows)
    order = frame.groupby("part")["share"].mean().sort_values(ascending=False).index.tolist()[:10]
    frame = frame[frame["part"].isin(order)]
    base = alt.Chart(frame).encode(
        y=alt.Y("part:N", sort=order, title=None, axis=alt.Axis(labelLimit=180)),
        x=alt.X("share:Q", title="share of what drove the output", axis=alt.Axis(format="%")),
    )
    box = base.mark_boxplot(extent="min-max", opacity=0.35, color="#888", size=14)
    dots = base.mark_circle(size=30, opacity=0.7).encode(
        color=alt.Color(
            "outcome:N",
            scale=alt.Scale(domain=["pass", "fail"], range=["#2e7d32", "#c62828"]),
            legend=alt.Legend(orient="bottom", title="row"),
        ),
        tooltip=["row", "variant", "part", alt.Tooltip("share:Q", format=".0%"), "outcome"],
    )
    chart = (
        (box + dots)
        .properties(width=320, height=alt.Step(20))
        .facet(row=alt.Row("variant:N", title=None, sort=[v.name for v in stored.plan.variants]))
    )
    st.altair_chart(chart, width="content")
    means = frame.groupby(["variant", "part", "outcome"])["share"].mean()
    table = [
        {
            "Variant": variant,
            "Template part": part,
            **{
                f"Mean share, {outcome}ing rows": f"{means[(variant, part, outcome)]:.0%}"
                if (variant, part, outcome) in means.index
                else "–"
                for outcome in ("pass", "fail")
            },
        }
        for variant in [v.name for v in stored.plan.variants]
        for part in order
        if any((variant, part, o) in means.index for o in ("pass", "fail"))
    ]
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")


def exports(stored: StoredEvaluation) -> None:
    plan, cells = stored.plan, list(stored.cells)
    if not cells:
        return
    cols = st.columns(3)
    stem = f"evaluation-{stored.id}"
    cols[0].download_button("CSV", export_csv(plan, cells), f"{stem}.csv", "text/csv", key=state.EVAL_CSV)
    cols[1].download_button(
        "JSONL", export_jsonl(plan, cells), f"{stem}.jsonl", "application/jsonl", key=state.EVAL_JSONL
    )
    cols[2].download_button(
        "HTML report", report_html(plan, cells, stored.name), f"{stem}.html", "text/html", key=state.EVAL_HTML
    )


def saved_list(open_page: str | None = None) -> None:
    """History of evaluations: search, open (on ``open_page`` when given), delete."""
    opened = workspace()
    if opened is None:
        st.caption("The workspace is unavailable; saved evaluations cannot be listed.")
        return
    search = st.text_input(
        "Search evaluations", key=state.EVAL_SEARCH, placeholder="name, variant or data text"
    )
    found = evaluations(opened, search)
    if not found:
        st.caption("No saved evaluations" + (" match." if search else " yet."))
        return
    for row in found[:30]:
        cols = st.columns([6, 2, 1, 1])
        by = f" · by {plain_markdown(row.author.name)}" if row.author.sub and row.author.name else ""
        cols[0].markdown(
            f"**{plain_markdown(row.name)}**  \n{row.created_at.astimezone():%Y-%m-%d %H:%M} · {row.done}/{row.total} · {row.status}{by}"
        )
        if cols[2].button("Open", key=state.child_key(state.EVAL_LIST_OPEN, row.id)):
            state.evaluate().open_id = row.id
            if open_page:
                st.switch_page(open_page)
            st.rerun()
        allowed, reason = may_delete(row.author, "evaluation")
        if cols[3].button(
            "Delete",
            key=state.child_key(state.EVAL_LIST_DELETE, row.id),
            disabled=not allowed,
            help=plain_markdown(reason) if reason else None,
        ):
            delete_evaluation(opened, row.id, current_identity())
            if state.evaluate().open_id == row.id:
                state.evaluate().open_id = None
            st.rerun()
