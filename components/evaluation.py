"""The Evaluate page's pieces: variant picker, data table, checks, the run loop, results, chart,
exports and the list of saved evaluations. The maths lives in ``salience.evaluation.runs``; every
finished row is committed to the workspace (``workspace.evaluations``) as it completes."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from components import state
from components.session_work import stop_check
from components.signin import current_author, current_identity, may_delete
from components.widgets import ENGINEER_DETAILS, plain_markdown
from components.workspace import browser_id, load_into_workbench, workspace
from salience.core.errors import InputError, WorkbenchError
from salience.core.text import plain_duration, unescape
from salience.core.types import GenerationSettings
from salience.evaluation.runs import (
    CHECK_KINDS,
    CHECK_WORDS,
    MAX_VARIANTS,
    Check,
    Dataset,
    Plan,
    batching_note,
    deletion_shares,
    export_csv,
    export_jsonl,
    flips,
    parse_data,
    plan_evaluation,
    report_html,
    row_order,
    rows_per_chunk,
    run_evaluation,
    share_rows,
    summarize,
    unserved_precision,
)
from salience.prompts.samples import load_samples
from salience.prompts.variant import Variant
from salience.prompts.variant_comparison import TargetChoice
from workspace.evaluations import (
    StoredEvaluation,
    create_evaluation,
    delete_evaluation,
    evaluations,
    load_evaluation,
    record_cell,
    set_status,
)

EVAL_DIR = Path(__file__).resolve().parent.parent / "data" / "eval"
WORKBENCH = "app_pages/workbench.py"
WORKBENCH_SOURCE = "Workbench template"
SAMPLE_PREFIX = "Sample: "
PINNED_PREFIX = "Pinned: "
UPLOAD, PASTE = "Upload a file", "Paste"
CHECK_LABELS = {kind: CHECK_WORDS[kind] for kind in CHECK_KINDS if kind != "expected"}


# ---- variants ---------------------------------------------------------------------------------
def _sources() -> dict[str, Variant]:
    """Every variant the page can offer: the workbench's template, pinned Compare variants, samples."""
    found: dict[str, Variant] = {}
    template = st.session_state.get(state.TEMPLATE) or ""
    if template.strip():
        found[WORKBENCH_SOURCE] = Variant("workbench", template, dict(state.workbench().variables))
    for variant in state.compare().variants:
        found[PINNED_PREFIX + variant.name] = Variant(variant.name, variant.template, dict(variant.variables))
    for sample in load_samples():
        found[SAMPLE_PREFIX + sample.name] = Variant(sample.name, sample.template, dict(sample.variables))
    return found


def variant_picker() -> list[Variant]:
    """1–4 variants, each editable here (name and template); its own values fill missing columns."""
    sources = _sources()
    chosen = [label for label in st.session_state[state.EVAL_SOURCES] if label in sources]
    if chosen != st.session_state[state.EVAL_SOURCES]:
        st.session_state[state.EVAL_SOURCES] = chosen
    picked = st.multiselect(
        "Template variants (1–4)",
        list(sources),
        key=state.EVAL_SOURCES,
        max_selections=MAX_VARIANTS,
        help="The workbench's template, variants pinned on Compare, or samples. Edit them below.",
    )
    variants = []
    for label in picked:
        source = sources[label]
        with st.expander(f"✏️ {label}", expanded=False):
            name = st.text_input(
                "Name", value=source.name, key=state.edit_key(state.EVAL_EDIT_PREFIX, label, "name")
            )
            template = st.text_area(
                "Template",
                value=source.template,
                key=state.edit_key(state.EVAL_EDIT_PREFIX, label, "template"),
                height=200,
            )
            if source.variables:
                st.caption(
                    "Its own values fill variables the data has no column for: "
                    + ", ".join(
                        f"{plain_markdown(k)} = “{plain_markdown(v)}”" for k, v in source.variables.items()
                    )
                )
        variants.append(Variant(name.strip(), template, source.variables))
    return variants


# ---- data -------------------------------------------------------------------------------------
def _shipped() -> list[str]:
    return sorted(p.name for p in EVAL_DIR.glob("*") if p.suffix in (".csv", ".jsonl"))


def _frame(dataset: Dataset) -> pd.DataFrame:
    return pd.DataFrame(list(dataset.rows), columns=list(dataset.columns), dtype=str)


def data_table() -> Dataset | None:
    """A shipped set, an uploaded file or pasted rows, then editable in place."""
    page = state.evaluate()
    choices = [*_shipped(), UPLOAD, PASTE]
    source = st.radio("Data", choices, key=state.EVAL_DATA_SOURCE, horizontal=True)
    loaded_from, dataset = None, None
    try:
        if source == UPLOAD:
            file = st.file_uploader(
                "CSV or JSONL with a header line",
                type=["csv", "tsv", "jsonl"],
                key=state.EVAL_UPLOAD,
                max_upload_size=10,  # MB (docs/SECURITY.md); the CLI reads files up to 50 MB
            )
            if file is not None:
                loaded_from = f"upload:{file.name}:{file.size}"
                if loaded_from != page.table_from:
                    kind = "jsonl" if file.name.lower().endswith(".jsonl") else "csv"
                    dataset = parse_data(file.getvalue(), f"The file '{file.name}'", kind)
        elif source == PASTE:
            text = st.text_area(
                "Paste rows (CSV or tab-separated with a header line, or JSONL)",
                key=state.EVAL_PASTE,
                height=140,
            )
            if text.strip():
                loaded_from = f"paste:{hash(text)}"
                if loaded_from != page.table_from:
                    dataset = parse_data(text, "The pasted rows")
        else:
            loaded_from = f"shipped:{source}"
            if loaded_from != page.table_from:
                dataset = parse_data(
                    (EVAL_DIR / source).read_bytes(), f"The file '{source}'", Path(source).suffix[1:]
                )
    except InputError as error:
        st.error(str(error), icon="⚠️")
        return None
    if dataset is not None:
        page.table, page.table_from = _frame(dataset), loaded_from
        st.session_state[state.EVAL_EXPECTED] = "expected" if "expected" in dataset.columns else ""
        st.session_state.pop(state.EVAL_EDITOR, None)
    if loaded_from is None or page.table is None:
        st.info("Load rows to evaluate: one column per template variable, one row per input.")
        return None
    edited = st.data_editor(
        page.table,
        key=state.EVAL_EDITOR,
        num_rows="dynamic",
        width="stretch",
        height=260,
    )
    records = [
        {k: ("" if pd.isna(v) else str(v)) for k, v in row.items()} for row in edited.to_dict("records")
    ]
    records = [r for r in records if any(v.strip() for v in r.values())]
    try:
        return Dataset(tuple(str(c) for c in edited.columns), tuple(records))
    except InputError as error:
        st.error(str(error), icon="⚠️")
        return None


# ---- checks -----------------------------------------------------------------------------------
def checks_editor(dataset: Dataset | None) -> tuple[list[Check], str | None] | None:
    expected = None
    if dataset is not None:
        options = ["", *dataset.columns]
        if st.session_state.get(state.EVAL_EXPECTED) not in options:
            st.session_state[state.EVAL_EXPECTED] = ""
        expected = st.selectbox(
            "Expected-answer column (passes when the output contains it; alternatives separated by |)",
            options,
            key=state.EVAL_EXPECTED,
            format_func=lambda c: c or "none",
        )
    st.caption(
        "Checks on every output (add rows): contains, does not contain, starts with, equals, a regular "
        "expression, at most N words, valid JSON. A row passes when all its checks pass."
    )
    table = st.data_editor(
        pd.DataFrame(
            {
                "check": pd.Series(dtype=str),
                "value": pd.Series(dtype=str),
                "ignore case": pd.Series(dtype=bool),
            }
        ),
        key=state.EVAL_CHECKS,
        num_rows="dynamic",
        column_config={
            "check": st.column_config.SelectboxColumn(
                "Check", options=list(CHECK_LABELS.values()), required=True
            ),
            "value": st.column_config.TextColumn(
                "Value", help="Text, a regular expression or a number of words"
            ),
            "ignore case": st.column_config.CheckboxColumn("Ignore case", default=False),
        },
        width="stretch",
    )
    kinds = {words: kind for kind, words in CHECK_LABELS.items()}
    checks = []
    for number, row in enumerate(table.to_dict("records"), start=1):
        if not isinstance(row.get("check"), str):
            continue
        value = row.get("value")
        try:
            checks.append(
                Check(
                    kinds[row["check"]],
                    "" if value is None or pd.isna(value) else str(value),
                    bool(row.get("ignore case")),
                )
            )
        except InputError as error:
            st.error(f"Check {number}: {error}", icon="⚠️")
            return None
    return checks, expected or None


def settings_controls() -> tuple[GenerationSettings, int, TargetChoice | None]:
    cols = st.columns(4)
    tokens = cols[0].number_input("Max new tokens", 1, 512, key=state.EVAL_MAX_NEW_TOKENS)
    stop = cols[1].text_input(
        "Stop at", key=state.EVAL_STOP, help="Separate several with |; \\n is a line break."
    )
    batch = cols[2].number_input("Batch size", 1, 64, key=state.EVAL_BATCH, help="Rows generated together.")
    why = cols[3].toggle(
        "Explain each row",
        key=state.EVAL_WHY,
        help="Which template parts drove each row's output: the Deletion estimate over the template's parts "
        "(about one second a row).",
    )
    anchor = st.text_input(
        "Explain the output part starting with",
        key=state.EVAL_ANCHOR,
        disabled=not why,
        help="As on Compare: the line of each output that starts with this word; empty = the whole output.",
    )
    st.caption(batching_note(st.session_state.get(state.PRECISION) or "bfloat16"))
    stops = tuple(unescape(part) for part in stop.split("|") if part)
    target = TargetChoice("anchor" if anchor.strip() else "output", anchor.strip()) if why else None
    return GenerationSettings(max_new_tokens=int(tokens), stop_sequences=stops), int(batch), target


def start(
    plan: Plan, settings: GenerationSettings, batch: int, target: TargetChoice | None, model_name: str
) -> None:
    opened = workspace()
    if opened is None:
        state.evaluate().message = (
            "error",
            "The workspace is unavailable, so finished rows could not be kept; see the sidebar.",
        )
        return
    options = {
        "model": model_name,
        "precision": st.session_state[state.PRECISION],
        "max_new_tokens": settings.max_new_tokens,
        "stop_sequences": list(settings.stop_sequences),
        "batch_size": batch,
        "target": None if target is None else {"mode": target.mode, "text": target.text},
    }
    name = " vs ".join(v.name for v in plan.variants) + f" · {len(plan.dataset.rows)} rows"
    page = state.evaluate()
    page.open_id = create_evaluation(opened, name, plan, options, browser_id(), current_author())
    page.message = None


def setup(model) -> None:
    """The inputs and the Run button; a mistake is named before anything runs."""
    variants = variant_picker()
    dataset = data_table()
    picked = checks_editor(dataset)
    settings, batch, target = settings_controls()
    plan = None
    if variants and dataset is not None and picked is not None:
        checks, expected = picked
        try:
            plan = plan_evaluation(variants, dataset, checks, expected)
        except InputError as error:
            st.error(str(error), icon="⚠️")
        else:
            for warning in plan.warnings:
                st.info(plain_markdown(warning), icon="ℹ️")
            for note in plan.notes:
                st.caption("ℹ️ " + plain_markdown(note))
    elif not variants:
        st.info("Choose at least one template variant.")
    disabled = plan is None or model is None
    if st.button(
        f"Run {plan.size} generations" if plan else "Run",
        type="primary",
        disabled=disabled,
        key=state.EVAL_RUN,
    ):
        start(plan, settings, batch, target, model.name)
        st.rerun()


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
