"""Compare: two to four prompt variants side by side, one target, one colour scale."""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from components import state
from components.bars import change_bars_html
from components.blind_review import panes_form
from components.comparison import (
    Pane,
    add_variant,
    clear_outputs,
    explain,
    on_pane_click,
    remove_variant,
    replace_variant,
    target_choice,
    variants,
)
from components.deletion import pane_agreement
from components.diff_view import diff_html
from components.heatmap import heatmap
from components.model_resource import LOADING
from components.permalink import QUERY_KEY, apply_link_from_url, create_link, link_url
from components.review import review_box
from components.sidebar import model_sidebar, model_status, no_model_text, status_text
from components.widgets import (
    ENGINEER_DETAILS,
    control_values,
    current_settings,
    plain_markdown,
    salience_controls,
)
from components.workspace import autosaved, workspace
from salience.attribution.methods import get_method
from salience.core.errors import WorkbenchError
from salience.core.text import excerpt
from salience.prompts.samples import load_samples
from salience.prompts.segments import regex_starts
from salience.prompts.templates import TemplateError, parse_template
from salience.prompts.variant import Variant
from salience.prompts.variant_comparison import MAX_VARIANTS, movement, output_diff, part_diff, readable_order
from salience.report.export import ExportDocument, ExportPane, legend_html, to_csv, to_html, to_json, to_png
from salience.report.views import readout

PRESENTATION_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header[data-testid="stHeader"]
  { display: none !important; }
[data-testid="stMainBlockContainer"] { max-width: 1500px; padding-top: 1.5rem; }
[data-testid="stMarkdownContainer"] p { font-size: 1.35rem; }
</style>"""
# Panes narrower than 18rem wrap onto the next row (stacked at 1024 px) instead of one word per line.
PANES_CSS = """<style>
.st-key-compare-panes [data-testid="stHorizontalBlock"]:not([data-testid="stColumn"] *) { flex-wrap: wrap; row-gap: 1.5rem; }
.st-key-compare-panes [data-testid="stColumn"]:not([data-testid="stColumn"] *) { min-width: min(100%, 18rem); }
</style>"""
TARGET_MODES = {
    "anchor": "The same part of every output (by its first word)",
    "reference": "The same reference text after every prompt",
    "output": "Each variant's whole output",
}


def _differences_from_first(variant: Variant, first: Variant) -> str:
    """A short line naming what this variant changes compared with the first one."""
    if variant.uid == first.uid:
        return "baseline"
    changes = [
        f"{name} = “{value if len(value) < 40 else value[:39] + '…'}”"
        for name, value in variant.variables.items()
        if first.variables.get(name) != value
    ]
    if variant.template != first.template:
        changes.insert(0, "edited template")
    return " · ".join(changes) or "same prompt as the first"


def _caption(panes: list[Pane], model_name: str, method: str, granularity: str) -> str:
    explained = {pane.target.explained.strip() for pane in panes if pane.target and pane.result}
    label = f"“{explained.pop()}”" if len(explained) == 1 else target_choice().describe()
    return f"Explaining {label} · {get_method(method).label} · {granularity} · {model_name}"


def _shared_legend(method: str, signed: bool, scale: float) -> None:
    st.html(legend_html(method, signed, scale, shared=True, test_id="shared-legend"))


def _draw_pane(pane: Pane, first: Variant, signed: bool, scale: float, intensity: float, large: bool) -> None:
    changes = _differences_from_first(pane.variant, first)
    if large:
        st.markdown(f"*{plain_markdown(changes)}*")
    else:
        st.caption(plain_markdown(changes))
    if pane.view is None or pane.result is None:
        if pane.variant.output:
            st.code(pane.variant.output, language=None, wrap_lines=True)
        st.warning(pane.message or "Nothing to explain yet.", icon="⚠️")
        return
    uid = pane.variant.uid
    heatmap(
        pane.view.cells(pane.result.prompt_length),
        method=pane.view.method,
        signed=signed,
        scale=pane.view.scale,
        intensity=intensity,
        selection=pane.view.target_span,
        status=f"Explaining “{pane.target.explained.strip()}”",
        stale=False,
        key=state.COMPARE_HEATMAP_PREFIX + uid,
        on_select=on_pane_click,
        on_select_args=(uid, pane.result.text),
        show_legend=large,
        large=large,
        click_hint="Click to explain the part of every output that starts with this word",
        shared_scale=not pane.own_scale,
    )
    if pane.own_scale:
        st.warning(pane.message, icon="⚠️")
    elif pane.message:
        st.caption(pane.message)
    st.markdown(f"**Reading:** {plain_markdown(readout(pane.view, pane.result, pane.rendered))}")


def _add_controls() -> None:
    samples = {example.name: example for example in load_samples()}
    row = st.container(horizontal=True, wrap=True, vertical_alignment="bottom")  # wraps, never truncates
    row.selectbox("Add a sample as a variant", list(samples), key=state.COMPARE_ADD_SAMPLE, width=320)
    full = len(variants()) >= MAX_VARIANTS
    if row.button(
        "Add",
        disabled=full,
        width="content",
        help=f"Compare holds {MAX_VARIANTS} variants at most: remove one under Edit variants to add another."
        if full
        else f"Add the chosen sample as variant {len(variants()) + 1} of at most {MAX_VARIANTS}.",
    ):
        example = samples[st.session_state[state.COMPARE_ADD_SAMPLE]]
        st.toast(add_variant(Variant(example.name, example.template, dict(example.variables))))
        st.rerun()
    row.button(
        "Regenerate outputs",
        on_click=clear_outputs,
        width="content",
        help="Generate every variant again with the workbench's generation settings.",
    )
    if row.button("Present ▶", disabled=not variants(), width="content", type="primary"):
        page = state.compare()
        page.presenting, page.present_index = True, 0
        st.rerun()


def _variant_editor() -> None:
    with st.expander("Edit variants", expanded=False):
        tabs = st.tabs([plain_markdown(variant.name) for variant in variants()])
        for tab, variant in zip(tabs, variants()):
            with tab:
                _edit_one(variant)


def _edit_one(variant: Variant) -> None:
    def key(name: str) -> str:
        return state.edit_key(state.COMPARE_EDIT_PREFIX, variant.uid, name)

    name = st.text_input("Name", value=variant.name, key=key("name"))
    template = st.text_area("Template", value=variant.template, key=key("template"), height=200)
    values = dict(variant.variables)
    try:
        names = parse_template(template).variables
    except TemplateError as error:
        st.error(str(error), icon="⚠️")
        names = tuple(values)
    for variable in names:
        values[variable] = st.text_area(
            variable, value=values.get(variable, ""), key=key("var::" + variable), height=68
        )
    values = {k: v for k, v in values.items() if k in names}
    cols = st.columns(2)
    changed = (name, template, values) != (variant.name, variant.template, variant.variables)
    if cols[0].button("Apply changes", key=key("apply"), disabled=not changed, type="primary"):
        replace_variant(
            variant.uid,
            name=name.strip() or variant.name,
            template=template,
            variables=values,
            output=None if (template, values) != (variant.template, variant.variables) else variant.output,
        )
        st.rerun()
    cols[1].button("Remove this variant", key=key("remove"), on_click=remove_variant, args=(variant.uid,))


def _target_controls() -> None:
    cols = st.columns([3, 2])
    cols[0].radio(
        "Explain",
        list(TARGET_MODES),
        key=state.COMPARE_TARGET_MODE,
        persist_state="session",
        format_func=TARGET_MODES.get,
        help="Every variant is explained against the same target, so the panes can be compared.",
    )
    mode = st.session_state[state.COMPARE_TARGET_MODE]
    if mode == "anchor":
        cols[1].text_input(
            "The part that starts with",
            key=state.COMPARE_ANCHOR,
            persist_state="session",
            help="Each output's line from this word on, e.g. Recommendation. Or click a word in any pane.",
        )
    elif mode == "reference":
        cols[1].text_area("Reference text", key=state.COMPARE_REFERENCE, persist_state="session", height=68)


def _differences(panes: list[Pane], method: str) -> tuple | None:
    """Output diff and salience diff of two chosen variants; returns them for the export (None
    while A and B are the same variant)."""
    st.subheader("Differences")
    a, b = _chosen_pair(panes)
    if a is b:
        st.info("A and B are the same variant: pick two different ones to see what changed.")
        return None
    diff = output_diff(a.variant.output or "", b.variant.output or "", a.variant.name, b.variant.name)
    st.markdown("**Output**")
    st.html(diff_html(diff))
    st.caption(plain_markdown(diff.summary))
    if a.result is None or b.result is None:
        st.info("Both variants need a heatmap for the salience difference.")
        return diff, ()
    st.toggle("Split fixed text into sentences", key=state.COMPARE_BY_SENTENCE, persist_state="session")
    rows = readable_order(
        part_diff(
            (a.rendered, a.result),
            (b.rendered, b.result),
            method,
            st.session_state[state.COMPARE_BY_SENTENCE],
        )
    )
    if not rows:
        st.info("The prompts have no parts to compare.")
        return diff, rows
    largest = max((abs(v) for row in rows for v in (row.score_a, row.score_b) if v is not None), default=0.0)
    st.markdown(
        f"**What changed from A ({plain_markdown(a.variant.name)}) to B ({plain_markdown(b.variant.name)}), "
        "and how much the answer leans on each part**"
    )
    _part_chart(rows, largest)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "part": row.title,
                    "what changed": movement(row, largest),
                    "text in A": row.text_a,
                    "text in B": row.text_b,
                }
                for row in rows
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    with st.expander(ENGINEER_DETAILS):
        st.caption(
            f"{get_method(method).label} scores summed over each part's tokens, in A and in B; "
            "“leans on it more/less” compares their sizes (|score|)."
        )
        st.dataframe(
            pd.DataFrame([row.to_json() for row in rows]).rename(
                columns=dict(zip(("score_a", "score_b"), _column_names(a.variant.name, b.variant.name)))
            ),
            hide_index=True,
            width="stretch",
            column_config={"delta": st.column_config.NumberColumn("difference", format="%+.4f")},
        )
    return diff, rows


def _column_names(a: str, b: str) -> tuple[str, str]:
    """The variants' names as table columns; "A: name" and "B: name" when they are the same."""
    return (a, b) if a != b else (f"A: {a}", f"B: {b}")


def _chosen_pair(panes: list[Pane]) -> tuple[Pane, Pane]:
    """The two panes picked as A and B (the first two until the reviewer picks others)."""
    names, choices = [pane.variant.name for pane in panes], range(len(panes))
    for key in (state.COMPARE_DIFF_A, state.COMPARE_DIFF_B):
        if key in st.session_state and st.session_state[key] not in choices:
            del st.session_state[key]  # a removed variant: back to the default (first, second)
    # The browser keeps the picked *name*; one no longer among the names (the variants were
    # replaced, e.g. by a link) falls back to `index`, so B does not silently become A.
    cols = st.columns(2)
    cols[0].selectbox("A", choices, index=0, key=state.COMPARE_DIFF_A, format_func=names.__getitem__)
    second = min(1, len(panes) - 1)
    cols[1].selectbox("B", choices, index=second, key=state.COMPARE_DIFF_B, format_func=names.__getitem__)
    return panes[st.session_state[state.COMPARE_DIFF_A]], panes[st.session_state[state.COMPARE_DIFF_B]]


# The difference chart's own encoding (not the heatmap's teal/orange, which mean "supported /
# worked against" elsewhere): the kind of change by colour, the direction by the bar's side.
CHANGE_COLOURS = {"text changed": "#6d28d9", "only on one side": "#a78bfa", "same text": "#94a3b8"}


def _change_kind(row) -> str:
    if row.score_a is None or row.score_b is None:
        return "only on one side"
    return "text changed" if row.text_changed else "same text"


def _part_chart(rows, largest: float) -> None:
    """One bar per part: how much more (right) or less (left) the answer leans on it in B, the
    parts whose text changed first; a part on one side only shows how much it counts there."""
    bars = [
        {
            "label": f"{number}. {excerpt(row.title, 160)}",
            "moved": abs(row.score_b or 0.0) - abs(row.score_a or 0.0),
            "kind": _change_kind(row),
            "tooltip": movement(row, largest),
        }
        for number, row in enumerate(rows, 1)
    ]
    st.html(change_bars_html(bars, CHANGE_COLOURS, "← the answer leans on it less in B · more in B →"))
    st.caption(
        "Bars to the right: the answer leans on that part more in B; to the left: less. Dark purple: its "
        "text changed; light purple: it is in one variant only (the bar shows how much it counts there); "
        "grey: same text in both. Parts whose text changed come first."
    )


def _export_panes(panes: list[Pane]) -> list[ExportPane]:
    return [
        ExportPane(
            name=pane.variant.name,
            subtitle=(f"Explaining “{pane.target.explained.strip()}”" if pane.result else pane.message),
            cells=pane.view.cells(pane.result.prompt_length) if pane.view else [],
            template=pane.variant.template,
            variables=pane.variant.variables,
            prompt=pane.prompt,
            output=pane.variant.output or "",
            explained=pane.target.explained if pane.target else "",
            result=pane.result,
        )
        for pane in panes
    ]


def _exports(panes, caption, signed, scale, intensity, method, granularity, model_name, differences) -> None:
    with st.expander("Export for slides and reports"):
        scopes = ["The whole comparison", *[pane.variant.name for pane in panes]]
        scope = st.selectbox("What to export", scopes, key=state.COMPARE_EXPORT_SCOPE)
        chosen = panes if scope == scopes[0] else [panes[scopes.index(scope) - 1]]
        diff, rows = differences if (differences and scope == scopes[0]) else (None, ())
        names = (
            (
                panes[st.session_state[state.COMPARE_DIFF_A]].variant.name,
                panes[st.session_state[state.COMPARE_DIFF_B]].variant.name,
            )
            if diff
            else ("A", "B")
        )
        document = ExportDocument(
            title="Prompt comparison" if len(chosen) > 1 else chosen[0].variant.name,
            caption=caption,
            panes=_export_panes(chosen),
            signed=signed,
            scale=scale,
            intensity=intensity,
            method=method,
            granularity=granularity,
            model=model_name,
            output_diff=diff,
            diff_names=names,
            parts=rows,
        )
        page_html = to_html(document)
        stem = (
            "comparison"
            if len(chosen) > 1
            else "".join(c if c.isalnum() else "-" for c in chosen[0].variant.name)
        )
        cols = st.columns(4)
        cols[0].download_button(
            "HTML",
            page_html,
            f"{stem}.html",
            "text/html",
            width="stretch",
            help="One file, no scripts, opens offline.",
        )
        with cols[1]:
            _png_button(page_html, f"{stem}.png")
        cols[2].download_button("CSV", to_csv(document), f"{stem}.csv", "text/csv", width="stretch")
        cols[3].download_button(
            "JSON", to_json(document), f"{stem}.json", "application/json", width="stretch"
        )
        st.caption(f"Caption: {plain_markdown(caption)}")


def _png_button(page_html: str, file_name: str) -> None:
    """Render on request (Chromium takes a second or two), then offer the file."""
    key = hashlib.sha256(page_html.encode()).hexdigest()
    ready = state.compare().png
    if ready and ready[0] == key:
        st.download_button("Download PNG", ready[1], file_name, "image/png", width="stretch", type="primary")
        return
    if st.button("PNG", width="stretch", help="Rendered by headless Chromium from the HTML export."):
        try:
            with st.spinner("Rendering the PNG…"):
                state.compare().png = (key, to_png(page_html))
        except WorkbenchError as error:
            st.error(str(error), icon="⚠️")
            return
        st.rerun()


def _permalink() -> None:
    cols = st.columns([1, 3], vertical_alignment="center")
    if cols[0].button(
        "Create link", help="Saves this comparison on the server; anyone who opens the link gets it."
    ):
        try:
            create_link()
        except WorkbenchError as error:
            st.error(str(error), icon="⚠️")
    snapshot_id = state.compare().permalink_id or state.compare().applied_snapshot
    if snapshot_id:
        with cols[1]:
            st.code(link_url(snapshot_id), language=None)
        opened = workspace()
        if opened is not None:
            try:
                opened.load(snapshot_id)  # notes need the comparison in the workspace
            except WorkbenchError:
                return
            review_box(opened, comparison_id=snapshot_id)


def _presentation(panes: list[Pane], caption: str, signed: bool, scale: float, intensity: float) -> None:
    st.html(PRESENTATION_CSS)
    page = state.compare()
    index = min(page.present_index, len(panes) - 1)
    pane = panes[index]
    # A flex row sizes each button to its label (columns cut them at 1024 px).
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        previous = st.button("◀ Previous", disabled=index == 0, shortcut="Left")
        following = st.button("Next ▶", disabled=index >= len(panes) - 1, shortcut="Right", type="primary")
        leave = st.button("Exit presentation", shortcut="Esc")
    if previous or following:
        page.present_index = index + (1 if following else -1)
        st.rerun()
    if leave:
        page.presenting = False
        st.rerun()
    st.markdown(f"### {index + 1} / {len(panes)} · {plain_markdown(pane.variant.name)}")
    st.markdown(plain_markdown(caption))
    _draw_pane(pane, panes[0].variant, signed, scale, intensity, large=True)


@autosaved
def page() -> None:
    link_error = apply_link_from_url()  # before any widget, so restored values can still be set
    model = model_sidebar()
    if link_error:
        st.title("Compare prompt variants")
        st.error(link_error, icon="🔗")
        if st.button("Continue without the link"):
            del st.query_params[QUERY_KEY]
            st.rerun()
        return
    if state.compare().presenting and variants() and model is not None:
        _compare(model, presenting=True)
        return
    state.compare().presenting = False
    st.title("Compare prompt variants")
    st.caption(
        "Pin variants from the Workbench (📌 Send to compare) or add samples here. Every variant is explained "
        "against the same target, on one colour scale."
    )
    _add_controls()
    if not variants():
        st.info("No variants yet. Use **Send to compare** on the Workbench, or add a sample above.")
        return
    if model is None:
        starting = model_status()  # while the model starts the sidebar counts down and reruns the page
        st.info(status_text(starting) if starting.phase == LOADING else no_model_text())
        return
    _variant_editor()
    _target_controls()
    _compare(model, presenting=False)


def _compare(model, presenting: bool) -> None:
    controls = control_values if presenting else salience_controls  # presenting draws no controls
    method, granularity, pattern, aggregation, intensity = controls(state.COMPARE_CONTROLS)
    if granularity == "regex":
        try:
            regex_starts("", pattern or "")
        except WorkbenchError as error:
            st.error(f"{error} Showing sentences instead.", icon="⚠️")
            granularity, pattern = "sentences", None
    precision = st.session_state[state.PRECISION]
    panes, scale = explain(
        model, current_settings(), precision, target_choice(), method, granularity, pattern, aggregation
    )
    signed = get_method(method).signed
    caption = _caption(panes, model.name, method, granularity)
    if presenting:
        _presentation(panes, caption, signed, scale, intensity)
        return
    st.markdown(f"**{plain_markdown(caption)}**")
    _shared_legend(method, signed, scale)
    st.html(PANES_CSS)
    columns = st.container(key="compare-panes").columns(len(panes), gap="medium")
    for column, pane in zip(columns, panes):
        with column:
            st.subheader(plain_markdown(pane.variant.name))
            _draw_pane(pane, panes[0].variant, signed, scale, intensity, large=False)
            pane_agreement(model, precision, pane, method, granularity, pattern, aggregation)
    differences = _differences(panes, method) if len(panes) >= 2 else None
    if len(panes) < 2:
        st.info("Pin or add a second variant to see the differences.")
    _exports(panes, caption, signed, scale, intensity, method, granularity, model.name, differences)
    panes_form([pane.variant for pane in panes])
    _permalink()


page()
