"""Blind side-by-side review: the form that makes a review from an evaluation, the reviewer's
page (one item at a time, sides randomised and recorded, keys 1–4), its results and the list on
History. The statistics live in ``salience.evaluation.review_stats``; storage in ``workspace.reviews``."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import altair as alt
import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from components import state
from components.signin import current_author, current_identity, may_delete
from components.widgets import ENGINEER_DETAILS, plain_markdown
from components.workspace import browser_id, load_into_workbench, workspace
from components.workspace.connection import write
from salience.core.errors import InputError
from salience.evaluation import review_stats as rv
from salience.prompts.variant import Variant
from workspace.evaluations import StoredEvaluation
from workspace.reviews import (
    ItemDraft,
    StoredReview,
    create_review,
    delete_review,
    give_verdict,
    items_from_evaluation,
    reviews,
)

REVIEW_PAGE = "app_pages/review.py"
WORKBENCH = "app_pages/workbench.py"
BUTTONS = (  # (what the reviewer clicks, its label, its key)
    ("A", "A is better", "1"),
    ("B", "B is better", "2"),
    ("same", "About the same", "3"),
    ("neither", "Both unacceptable", "4"),
)
ANSWER_WORDS = {
    "A": "A is better",
    "B": "B is better",
    "same": "About the same",
    "neither": "Both unacceptable",
}
DEFAULT_INSTRUCTIONS = "Which reply would you send to this customer?"
# Tighter headings than Streamlit's: at 1024×768 the four answers must show without scrolling.
_CSS = """<style>
[data-testid="stMainBlockContainer"] {padding-top: 3rem}  /* below the header bar */
[data-testid="stMainBlockContainer"] h1 {font-size: 2.2rem; padding-top: .5rem; padding-bottom: .5rem}
.st-key-review-instructions p {font-size: 1.35rem; font-weight: 600}
.st-key-review-inputs p, .st-key-review-side-A p, .st-key-review-side-B p {font-size: 1.2rem; line-height: 1.5}
.st-key-review-side-A h3, .st-key-review-side-B h3 {font-size: 1.6rem; padding-top: 0; padding-bottom: .25rem}
.st-key-review-answers button {padding-left: .6rem; padding-right: .6rem}
.st-key-review-answers button p {font-size: 1.1rem}
@media (max-width: 1100px) {  /* the four answers on one line at 1024 px */
  .st-key-review-answers button {padding-left: .45rem; padding-right: .45rem}
  .st-key-review-answers button p {font-size: 1rem}
}
</style>"""


def link(uid: str, results: bool = False) -> str:
    """The reviewers' address of a review (its results' with ``results``)."""
    url = getattr(st.context, "url", "") or ""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return f"{base}/review?r={uid}" + ("&view=results" if results else "")


# ---- making a review ----------------------------------------------------------------------------
def create_form(stored: StoredEvaluation) -> None:
    """On an opened evaluation: ask reviewers to compare two of its variants, blind."""
    plan = stored.plan
    if len(plan.variants) < 2 or not stored.cells:
        return
    created = state.review().created
    with st.expander("Ask reviewers to compare two variants (blind)", expanded=bool(created)):
        if created and created[0] == stored.id:
            st.success("Review created. Send this link to your reviewers:", icon="✅")
            st.code(link(created[1]), language=None)
            st.page_link(REVIEW_PAGE, label="Open the review", query_params={"r": created[1]})
        names = [variant.name for variant in plan.variants]
        rows = range(len(plan.dataset.rows))
        with st.form(key=state.REVIEW_FORM, border=False):
            cols = st.columns(2)
            first = cols[0].selectbox(
                "First variant", range(len(names)), 0, names.__getitem__, key=state.REVIEW_FIRST
            )
            second = cols[1].selectbox(
                "Second variant", range(len(names)), 1, names.__getitem__, key=state.REVIEW_SECOND
            )
            chosen = st.multiselect(
                "Rows to review (all when empty)",
                rows,
                format_func=lambda r: f"Row {r + 1}: " + " · ".join(plan.dataset.rows[r].values())[:60],
                key=state.REVIEW_ROWS,
            )
            name, instructions, ask_reason, per_item = _review_fields(names)
            submitted = st.form_submit_button("Create review")
        if submitted:
            _create(stored, first, second, chosen, name, instructions, ask_reason, int(per_item))


def _review_fields(names: list[str]) -> tuple[str, str, bool, int]:
    """The review's name, instructions, whether to ask for a reason and reviewers per item (inside a form)."""
    name = st.text_input("Review name", placeholder=f"{names[0]} vs {names[1]}", key=state.REVIEW_NAME)
    instructions = st.text_area(
        "Instructions for reviewers",
        DEFAULT_INSTRUCTIONS,
        max_chars=2_000,
        height=68,
        key=state.REVIEW_INSTRUCTIONS,
    )
    cols = st.columns(2)
    ask_reason = cols[0].checkbox("Ask for a reason (optional for reviewers)", key=state.REVIEW_ASK_REASON)
    per_item = cols[1].number_input(
        "Reviewers per item", 1, 20, 2, key=state.REVIEW_PER_ITEM, help="How many people judge each item."
    )
    return name, instructions, ask_reason, int(per_item)


def _create(
    stored: StoredEvaluation,
    first: int,
    second: int,
    rows: list[int],
    name: str,
    instructions: str,
    ask_reason: bool,
    per_item: int,
) -> None:
    opened = workspace()
    if opened is None:
        st.error("The workspace is not available; the review cannot be saved now.", icon="⚠️")
        return
    plan = stored.plan
    try:
        items = items_from_evaluation(stored, first, second, sorted(rows) or None)
        a, b = plan.variants[first], plan.variants[second]
        _, uid = create_review(
            opened,
            name.strip() or f"{a.name} vs {b.name}",
            ({"name": a.name, "template": a.template}, {"name": b.name, "template": b.template}),
            items,
            instructions,
            ask_reason,
            per_item,
            stored.id,
            {
                "max_new_tokens": stored.options.get("max_new_tokens"),
                "stop_sequences": stored.options.get("stop_sequences"),
            },
            by=current_author(),
        )
    except InputError as error:
        st.error(str(error), icon="⚠️")
        return
    state.review().created = (stored.id, uid)
    st.rerun()


def _lines(text: str) -> str:
    """A reply as the reviewer reads it: its own line breaks kept, nothing formatted."""
    return "  \n".join(plain_markdown(line) for line in text.strip().splitlines())


def _inputs(values: dict[str, str]) -> str:
    """The row's values under readable names ("food_likes" reads "Food likes")."""
    return "  \n".join(
        f"**{plain_markdown(name.replace('_', ' ').strip().capitalize())}:** {plain_markdown(value)}"
        for name, value in values.items()
    )


def panes_form(variants: list[Variant]) -> None:
    """On Compare: ask reviewers to compare the replies of two panes (one item), blind."""
    ready = [v for v in variants if (v.output or "").strip()]
    if len(ready) < 2:
        return
    created = state.review().created
    with st.expander("Ask reviewers to compare two of these replies (blind)", expanded=bool(created)):
        if created and created[0] == 0:
            st.success("Review created. Send this link to your reviewers:", icon="✅")
            st.code(link(created[1]), language=None)
            st.page_link(REVIEW_PAGE, label="Open the review", query_params={"r": created[1]})
        names = [v.name for v in ready]
        with st.form(key=state.REVIEW_FORM, border=False):
            cols = st.columns(2)
            first = cols[0].selectbox(
                "First", range(len(names)), 0, names.__getitem__, key=state.REVIEW_FIRST
            )
            second = cols[1].selectbox(
                "Second", range(len(names)), 1, names.__getitem__, key=state.REVIEW_SECOND
            )
            name, instructions, ask_reason, per_item = _review_fields(names)
            submitted = st.form_submit_button("Create review")
        if not submitted:
            return
        a, b = ready[first], ready[second]
        opened = workspace()
        try:
            if first == second:
                raise InputError("Choose two different replies to compare.")
            if opened is None:
                raise InputError("The workspace is not available; the review cannot be saved now.")
            shared = {
                k: v for k, v in a.variables.items() if b.variables.get(k) == v
            }  # never what tells them apart
            item = ItemDraft(shared, (a.output or "", b.output or ""), (dict(a.variables), dict(b.variables)))
            _, uid = create_review(
                opened,
                name.strip() or f"{a.name} vs {b.name}",
                ({"name": a.name, "template": a.template}, {"name": b.name, "template": b.template}),
                [item],
                instructions,
                ask_reason,
                int(per_item),
                by=current_author(),
            )
        except InputError as error:
            st.error(str(error), icon="⚠️")
            return
        state.review().created = (0, uid)
        st.rerun()


# ---- the reviewer's page ------------------------------------------------------------------------
def _save_name() -> None:
    browser, name = browser_id(), st.session_state[state.REVIEWER]
    if browser:
        write("your name", lambda opened: opened.set_reviewer(browser, name))


def reviewer_name() -> str:
    """Who is reviewing: the signed-in person (their e-mail) when the app has sign-in, else the
    name typed in the sidebar (remembered in this browser)."""
    identity = current_identity()
    if identity is not None and (identity.email or identity.name).strip():
        return " ".join((identity.email or identity.name).split())  # an e-mail is one person's
    with st.sidebar:
        st.text_input(
            "Your name",
            key=state.REVIEWER,
            persist_state="session",
            max_chars=200,
            on_change=_save_name,
            help="Your answers are saved under this name; come back with it to carry on.",
        )
    return " ".join(str(st.session_state.get(state.REVIEWER) or "").split())


def _answer(review: StoredReview, item_id: int, reviewer: str, button: str, left: int, at_key: tuple) -> None:
    """A click on one of the four answers: commit it, then go to the next item not yet answered."""
    reason = str(st.session_state.get(state.child_key(state.REVIEW_REASON, item_id)) or "").strip()
    opened = workspace()
    try:
        if opened is None:
            raise InputError(
                "Your answer could not be saved: the workspace is not available. Try again shortly."
            )
        choice = rv.choice_for(button, left)
        give_verdict(opened, review.id, item_id, reviewer, choice, left, reason, current_author())
    except InputError as error:
        state.review().message = str(error)
        return
    except SQLAlchemyError:
        state.review().message = "Your answer could not be saved just now; please click it again."
        return
    queue = review.queue(reviewer)
    answered = set(review.mine(reviewer)) | {item_id}
    here = next((n for n, item in enumerate(queue) if item.id == item_id), 0)
    later = [n for n, item in enumerate(queue) if n > here and item.id not in answered]
    earlier = [n for n, item in enumerate(queue) if item.id not in answered]
    state.review().at[at_key] = (later or earlier or [len(queue)])[0]


def _move(at_key: tuple, to: int) -> None:
    state.review().at[at_key] = max(0, to)


def reviewer_view(
    review: StoredReview, explain: Callable[[StoredReview, rv.ReviewItem, int], None] | None = None
) -> None:
    """One item at a time: the inputs, outputs A and B (sides drawn per item and reviewer), the
    four answers (keys 1–4), an optional reason, progress, back and forward."""
    st.html(_CSS)
    reviewer = reviewer_name()
    st.title(plain_markdown(review.name))
    if review.instructions:
        with st.container(key="review-instructions"):
            st.markdown(plain_markdown(review.instructions))
    if not reviewer:
        st.info("Type your name in the box on the left to start. Your answers are saved under it.", icon="👋")
        return
    message = state.review().message
    if message:
        st.error(message, icon="⚠️")
        state.review().message = None
    queue = review.queue(reviewer)
    mine = review.mine(reviewer)
    if not queue:
        st.success("Every item already has enough reviewers. Thank you!", icon="✅")
        return
    at_key = (review.uid, rv.reviewer_key(reviewer))
    positions = state.review().at
    if at_key not in positions:  # resume: the first item not answered yet
        positions[at_key] = next((n for n, item in enumerate(queue) if item.id not in mine), len(queue))
    at = min(positions[at_key], len(queue))
    done = sum(item.id in mine for item in queue)
    where = f"Item {at + 1} of {len(queue)} · " if at < len(queue) else ""
    st.progress(done / len(queue), text=f"{where}You have answered {done} of {len(queue)}")
    if at >= len(queue):
        st.success(f"You have answered all {len(queue)} items. Thank you!", icon="✅")
        st.button(
            "Back to the last item", key=state.REVIEW_BACK, on_click=_move, args=(at_key, len(queue) - 1)
        )
        return
    _item(review, queue[at], reviewer, mine, at, at_key, explain)


def _item(
    review: StoredReview,
    item: rv.ReviewItem,
    reviewer: str,
    mine: dict,
    at: int,
    at_key: tuple,
    explain: Callable[[StoredReview, rv.ReviewItem, int], None] | None,
) -> None:
    """One item: its inputs, sides A and B, the reason box, the answers, back and next."""
    left = review.left(item.id, reviewer)
    given = mine.get(item.id)
    with st.container(key="review-inputs", border=True):
        st.markdown(_inputs(item.inputs) or "(no inputs)")
    sides = (item.outputs[left], item.outputs[1 - left])
    columns = st.columns(2, gap="medium")
    for column, label, text in zip(columns, ("A", "B"), sides):
        with column, st.container(key=f"review-side-{label}", border=True):
            st.markdown(f"### {label}")
            st.markdown(_lines(text) or "*(empty reply)*")
    if review.ask_reason:
        reason_key = state.child_key(state.REVIEW_REASON, item.id)
        if reason_key not in st.session_state and given is not None:
            st.session_state[reason_key] = given.reason
        st.text_area("Why? (optional)", key=reason_key, max_chars=rv.MAX_REASON, height=68)
    with st.container(key="review-answers", horizontal=True, gap="small"):
        for button, label, shortcut in BUTTONS:
            chosen = given is not None and given.button == button
            st.button(
                label,
                key=state.child_key(state.REVIEW_ANSWER, button),
                type="primary" if chosen else "secondary",
                shortcut=shortcut,
                on_click=_answer,
                args=(review, item.id, reviewer, button, left, at_key),
            )
    if given is not None:
        st.caption(f"Your answer: **{ANSWER_WORDS[given.button]}** — saved. Click another to change it.")
    with st.container(horizontal=True):
        st.button("← Back", key=state.REVIEW_BACK, disabled=at == 0, on_click=_move, args=(at_key, at - 1))
        st.button(
            "Next →", key=state.REVIEW_NEXT, disabled=given is None, on_click=_move, args=(at_key, at + 1)
        )
    if given is not None and explain is not None:
        explain(review, item, left)


# ---- results ------------------------------------------------------------------------------------
def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _number(value: float | None) -> str:
    return "not measurable yet" if value is None else f"{value:.2f}"


def results_view(review: StoredReview) -> None:
    """Win rates, agreement, position bias, reviewers, the items reviewers disagree on, exports."""
    names = review.names
    summary = rv.summarize_review(names, review.items, review.verdicts)
    st.title(f"Results: {plain_markdown(review.name)}")
    st.caption(
        f"{summary.items} items · {summary.verdicts} answers from {len(summary.reviewers)} reviewer(s) · "
        f"{review.per_item} reviewer(s) wanted per item"
        + (
            ""
            if review.evaluation_exists or review.evaluation_id is None
            else " · its evaluation was deleted; the review keeps the replies it showed"
        )
    )
    st.page_link(REVIEW_PAGE, label="Open the reviewer's page", query_params={"r": review.uid})
    if not summary.verdicts:
        st.info("No answers yet. Send the reviewer's page to your reviewers.", icon="ℹ️")
        st.code(link(review.uid), language=None)
        return
    _wins(summary)
    _agreement(summary)
    _reviewers(summary, names)
    _items(review, summary)
    _exports(review)


def _wins(summary: rv.ReviewSummary) -> None:
    """Which variant reviewers prefer: a line per variant, the table and the chart."""
    st.subheader("Which variant do reviewers prefer?")
    table = [
        {
            "Variant": w.name,
            "Wins": w.wins,
            "About the same": w.ties,
            "Losses": w.losses,
            "Win rate (ties count half)": _percent(w.rate),
            "Likely range": f"{_percent(w.interval[0])} – {_percent(w.interval[1])}" if w.judged else "–",
            "Both unacceptable": f"{w.neither} ({_percent(w.neither_rate)})",
        }
        for w in summary.wins
    ]
    st.markdown(
        "  \n".join(
            f"**{plain_markdown(w.name)}** wins {_percent(w.rate)} (likely between {_percent(w.interval[0])} and "
            f"{_percent(w.interval[1])}) · both unacceptable in {_percent(w.neither_rate)} of answers"
            for w in summary.wins
            if w.judged
        )
    )
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
    _win_chart(summary)
    st.caption(
        "Likely range: the true win rate is probably (19 times in 20) inside it; more answers narrow it."
    )


def _agreement(summary: rv.ReviewSummary) -> None:
    """Whether reviewers agree and whether the side matters, with the numbers for engineers."""
    agreement = summary.agreement
    st.subheader("Do reviewers agree?")
    measure = "Cohen's kappa" if agreement.measure == "kappa" else "Krippendorff's alpha"
    st.markdown(f"**Agreement ({measure}): {_number(agreement.value)}** — {agreement.words}")
    st.subheader("Does the side matter?")
    st.markdown(summary.bias.words)
    with st.expander(ENGINEER_DETAILS):
        st.caption(
            "Win rate = (wins + ties/2) / answers other than 'both unacceptable'; the likely range is the 95% "
            f"Wilson score interval. Cohen's kappa: {_number(agreement.kappa)} (two reviewers only); "
            f"Krippendorff's alpha (nominal): {_number(agreement.alpha)}; over {agreement.items} items judged by "
            "two or more reviewers, the four answers as categories. Left-side wins: "
            f"{summary.bias.left_wins}/{summary.bias.decisive}, 95% Wilson "
            f"{_percent(summary.bias.interval[0])}–{_percent(summary.bias.interval[1])}."
        )


def _reviewers(summary: rv.ReviewSummary, names) -> None:
    """One row per reviewer: how many answers and which way."""
    st.subheader("Reviewers")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Reviewer": row["reviewer"],
                    "Answers": row["verdicts"],
                    f"{names[0]} better": row["first_wins"],
                    f"{names[1]} better": row["second_wins"],
                    "About the same": row["same"],
                    "Both unacceptable": row["both_unacceptable"],
                    "Left side won": _percent(row["left_win_rate"]),
                }
                for row in summary.reviewers
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def _win_chart(summary: rv.ReviewSummary) -> None:
    """Each variant's win rate as a bar, its likely range as a line across it."""
    frame = pd.DataFrame(
        [
            {"variant": w.name, "win rate": w.rate, "low": w.interval[0], "high": w.interval[1]}
            for w in summary.wins
            if w.judged
        ]
    )
    if frame.empty:
        return
    x = alt.X(
        "win rate:Q",
        scale=alt.Scale(domain=[0, 1]),
        axis=alt.Axis(format="%", tickCount=5),
        title="win rate (ties count half)",
    )
    y = alt.Y("variant:N", title=None, sort=list(summary.names), axis=alt.Axis(labelLimit=240))
    base = alt.Chart(frame).encode(y=y)
    bars = base.mark_bar(color="#4a7bd0", opacity=0.8).encode(
        x=x, tooltip=["variant", alt.Tooltip("win rate:Q", format=".0%")]
    )
    ranges = base.mark_rule(strokeWidth=3, color="#222").encode(x="low:Q", x2="high:Q")
    st.altair_chart((bars + ranges).properties(height=alt.Step(36)), width="stretch")


def _items(review: StoredReview, summary: rv.ReviewSummary) -> None:
    by_id = {item.id: item for item in review.items}
    flagged = list(dict.fromkeys(summary.disagreements + summary.conflicts))
    order = flagged + [item.id for item in review.items if item.id not in set(flagged)]
    grouped: dict[int, list[rv.Verdict]] = {}
    for verdict in review.verdicts:
        grouped.setdefault(verdict.item, []).append(verdict)
    st.subheader("Items")
    st.markdown(
        f"**{len(summary.disagreements)}** item(s) where reviewers disagree · **{len(summary.conflicts)}** where "
        "reviewers and the automatic checks disagree — listed first."
    )
    for item_id in order[:200]:
        item = by_id[item_id]
        marks = []
        if item_id in summary.disagreements:
            marks.append("reviewers disagree")
        if item_id in summary.conflicts:
            marks.append("reviewers and checks disagree")
        given = grouped.get(item_id, [])
        head = f"Item {item.position + 1}" + (f" (row {item.row + 1})" if item.row is not None else "")
        head += f" · {len(given)} answer(s)" + (f" · ⚠️ {', '.join(marks)}" if marks else "")
        with st.expander(head):
            st.markdown(_inputs(item.inputs))
            columns = st.columns(2)
            for index, column in enumerate(columns):
                with column:
                    check = {True: " · ✅ passed the checks", False: " · ❌ failed the checks", None: ""}[
                        item.passed[index]
                    ]
                    st.markdown(f"**{plain_markdown(review.names[index])}**{check}")
                    st.markdown(_lines(item.outputs[index]) or "*(empty reply)*")
                    if st.button(
                        "Open in the workbench", key=state.child_key(state.REVIEW_OPEN, f"{item_id}:{index}")
                    ):
                        variant = review.variants[index]
                        load_into_workbench(
                            variant["name"], variant.get("template", ""), item.values[index], review.options
                        )
                        st.switch_page(WORKBENCH)
            for verdict in given:
                words = (
                    rv.CHOICE_WORDS[verdict.choice]
                    .replace("the first variant", review.names[0])
                    .replace("the second variant", review.names[1])
                )
                st.markdown(
                    f"- **{plain_markdown(verdict.reviewer)}**: {plain_markdown(words)}"
                    + (f" — “{plain_markdown(verdict.reason)}”" if verdict.reason else "")
                )


def _exports(review: StoredReview) -> None:
    stem = f"review-{review.uid[:8]}"
    args = (review.names, review.items, review.verdicts)
    cols = st.columns(3)
    cols[0].download_button("CSV", rv.export_csv(*args), f"{stem}.csv", "text/csv", key=state.REVIEW_CSV)
    cols[1].download_button(
        "JSONL",
        rv.export_jsonl(review.name, *args),
        f"{stem}.jsonl",
        "application/jsonl",
        key=state.REVIEW_JSONL,
    )
    cols[2].download_button(
        "HTML report",
        rv.report_html(review.name, *args, review.instructions),
        f"{stem}.html",
        "text/html",
        key=state.REVIEW_HTML,
    )


# ---- History ------------------------------------------------------------------------------------
def review_list() -> None:
    """Every review, newest first, with its links."""
    opened = workspace()
    if opened is None:
        st.caption("The workspace is unavailable; reviews cannot be listed.")
        return
    found = reviews(opened)
    if not found:
        st.caption("No reviews yet. Make one from an evaluation on the Evaluate page.")
        return
    for row in found[:100]:
        cols = st.columns([6, 2, 2, 1])
        cols[0].markdown(
            f"**{plain_markdown(row.name)}**  \n{row.created_at.astimezone():%Y-%m-%d %H:%M} · "
            f"{plain_markdown(' vs '.join(row.variants))} · {row.items} items · {row.verdicts} answers from "
            f"{row.reviewers} reviewer(s)"
        )
        cols[1].page_link(REVIEW_PAGE, label="Reviewer's page", query_params={"r": row.uid})
        cols[2].page_link(REVIEW_PAGE, label="Results", query_params={"r": row.uid, "view": "results"})
        allowed, reason = may_delete(row.author, "review")
        if cols[3].button(
            "Delete",
            key=state.child_key(state.REVIEW_LIST_DELETE, row.id),
            disabled=not allowed,
            help=plain_markdown(reason) if reason else None,
        ):
            delete_review(opened, row.id, current_identity())
            st.rerun()
