"""Setting up an evaluation: the variants, the data table, the checks, the settings, and the
button that starts the run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from components import state
from components.signin import current_author
from components.widgets import ENGINEER_DETAILS, plain_markdown
from components.workspace import browser_id, workspace
from salience.core.errors import InputError
from salience.core.text import unescape
from salience.core.types import GenerationSettings
from salience.evaluation.runs import (
    CHECK_KINDS,
    CHECK_WORDS,
    MAX_VARIANTS,
    Check,
    Dataset,
    Plan,
    batching_note,
    parse_data,
    plan_evaluation,
)
from salience.prompts.samples import load_samples
from salience.prompts.variant import Variant
from salience.prompts.variant_comparison import TargetChoice
from workspace.evaluations import (
    create_evaluation,
)

EVAL_DIR = Path(__file__).resolve().parent.parent / "data" / "eval"
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
    try:
        loaded_from, dataset = _read_source(source, page)
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


def _read_source(source: str, page) -> tuple[str | None, Dataset | None]:
    """The chosen source's widget and what it holds: (where the rows come from, the rows when they
    are new since the table was last loaded). Raises `InputError` for rows that do not parse."""
    loaded_from, dataset = None, None
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
    return loaded_from, dataset


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
    with st.expander(ENGINEER_DETAILS):  # the compute precision is an engineer's word
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
