"""Every session-state key the app uses, named in one place, with defaults.

Two kinds of state live in a session:

- **Widget values**, under the widget's key (Streamlit needs a key per widget). Their names are
  below; where the workbench and the Compare page have the same controls, both sets of keys come
  from one definition (``ControlKeys.with_prefix``).
- **A page's other state** (what it generated, what was clicked, messages waiting to be shown) in
  one dataclass per page — ``WorkbenchState``, ``CompareState``, ``EvaluateState`` — stored under
  one key and read with ``workbench()``, ``compare()`` and ``evaluate()``.

The model and workspace keep a few session-wide values (``SESSION_KEYS``) used by the sidebar and
``components/workspace``. Click handlers get what they need as callback arguments, never from a
value stashed in session state for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import streamlit as st

from salience.attribution import methods
from salience.core.types import Generation
from salience.prompts.variant import Variant

# ---- session-wide (model and workspace) ---------------------------------------------------------
MODEL_SPEC = "model_spec"
MODEL_SPEC_INPUT = "model_spec_input"
MODEL_ERROR = "model_error"
MODEL_FALLBACK = "model_fallback"  # the spec in use before a load was asked for
MODEL_IN_PROCESS = "model_in_process"  # this session chose the in-process model over the engine
MODEL_EXPECTED = "model_expected"  # the model a restored state was made with (engine mode)
PRECISION = "precision"
DELETION_OWNER = "deletion_owner"  # this session's id for its background Deletion jobs

WORKSPACE_BRIDGE = "workspace_bridge"  # the cookie/draft component's value
BROWSER_ID = "browser_id"
WORKSPACE_RESTORED = "workspace_restored"
WORKSPACE_ERROR = "workspace_error"
WORKSPACE_NOTICE = "workspace_notice"  # something the restore could not bring back, said once
SAVE_FAILURE = "save_failure"  # why the last write failed (None once writes go through again)
PENDING_WRITES = "pending_writes"  # writes that failed, kept in order and retried
DRAFTS = "drafts"  # session key -> text typed but not yet committed by its text area
SAVED_STATE_HASH = "saved_state_hash"
TEMPLATE_VERSION = "template_version"  # (hash of template + values, saved version id)
RUN_IDS = "run_ids"  # (model, precision, prompt, output) -> run id
RECORDED_SALIENCE = "recorded_salience"
REVIEWER = "reviewer"


# ---- one dataclass per page ---------------------------------------------------------------------
WORKBENCH = "workbench_state"
COMPARE = "compare_state"
EVALUATE = "evaluate_state"
REVIEW = "review_state"


@dataclass
class WorkbenchState:
    """The workbench's state that is not a widget's value."""

    sample_source: str = "fewshot-mistake"  # the sample the prompt came from (kept while it is edited)
    loaded_sample: str | None = None  # the sample (or saved template) last put into the widgets
    uploaded: list[Variant] = field(default_factory=list)  # prompts from the user's JSONL file
    upload_message: tuple[str, str] | None = None  # ("info" | "error", text) about that file
    variables: dict[str, str] = field(default_factory=dict)  # name -> value, kept when the template changes
    generation: Generation | None = None  # the output of the current prompt
    generated_for: tuple | None = None  # (model, precision, prompt, settings) that produced it
    selection: tuple | None = None  # (start, end, text): characters relative to the explained text's start
    generate_pending: bool = False  # Generate was clicked while the model loaded
    pin_message: str | None = None  # what "Send to compare" did, shown once
    what_if: dict | None = None  # the last "What if I delete this?" result (components/deletion.py)
    what_if_ranking: tuple | None = None  # the ranking the segment picker last defaulted from


@dataclass
class CompareState:
    """The Compare page's state that is not a widget's value."""

    variants: list[Variant] = field(
        default_factory=list
    )  # at most salience.prompts.variant_comparison.MAX_VARIANTS
    png: tuple[str, bytes] | None = None  # (hash of the HTML export, PNG bytes) once rendered
    presenting: bool = False
    present_index: int = 0
    permalink_id: str | None = None  # the id of the link this session made last
    applied_snapshot: str | None = None  # the ?c= id already restored into this session


@dataclass
class EvaluateState:
    """The Evaluate page's state that is not a widget's value."""

    table: Any = None  # the data as a DataFrame (what the editor shows and edits)
    table_from: str | None = None  # what ``table`` was loaded from (reloads when it changes)
    open_id: int | None = None  # the workspace id of the evaluation shown (and run) on the page
    message: tuple[str, str] | None = None  # ("error" | "info", text) from the last Run click
    deletion: dict = field(default_factory=dict)  # "evaluation:variant:row" -> Deletion shares


@dataclass
class ReviewState:
    """The blind review pages' state that is not a widget's value."""

    at: dict = field(default_factory=dict)  # (review uid, reviewer key) -> index of the item shown
    message: str | None = None  # why the last answer was not saved, shown once
    created: tuple[int, str] | None = None  # (evaluation id, uid) of the review this session made
    why: dict = field(default_factory=dict)  # heatmap key -> (start, end, text) clicked in a reply


def _page(key: str, kind: type):
    found = st.session_state.get(key)
    if not isinstance(found, kind):
        found = kind()
        st.session_state[key] = found
    return found


def workbench() -> WorkbenchState:
    return _page(WORKBENCH, WorkbenchState)


def compare() -> CompareState:
    return _page(COMPARE, CompareState)


def evaluate() -> EvaluateState:
    return _page(EVALUATE, EvaluateState)


def review() -> ReviewState:
    return _page(REVIEW, ReviewState)


PAGE_KEYS = {WORKBENCH: WorkbenchState, COMPARE: CompareState, EVALUATE: EvaluateState, REVIEW: ReviewState}


# ---- widget keys --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ControlKeys:
    """Keys of one set of salience controls and its heatmap (the workbench's or Compare's)."""

    method: str
    granularity: str
    regex: str
    aggregation: str
    intensity: str
    heatmap: str  # the heatmap's key (Compare: a prefix, + the pane's uid)

    @classmethod
    def with_prefix(cls, prefix: str) -> ControlKeys:
        return cls(*(prefix + f.name for f in fields(cls)))

    def defaults(self, granularity: str) -> dict[str, Any]:
        return {
            self.method: methods.DEFAULT_METHOD,
            self.granularity: granularity,
            self.regex: "^Recommendation",
            self.aggregation: "sum",
            self.intensity: 1.0,
        }


# Workbench
SAMPLE_PICKER = "sample_picker"  # a sample's name, or CUSTOM once the text is edited
UPLOADER = "uploader"
TEMPLATE = "template"
VARIABLE_WIDGET_PREFIX = "var::"  # + the variable's name
REFERENCE_TARGET = "reference_target"
USE_REFERENCE = "use_reference"
MAX_NEW_TOKENS = "max_new_tokens"
STOP_SEQUENCES = "stop_sequences"
SAMPLING = "sampling"
TEMPERATURE = "temperature"
TOP_K = "top_k"
TOP_P = "top_p"
SEED = "seed"
CHAT_TEMPLATE = "chat_template"
AUTO_RERUN = "auto_rerun"
WORKBENCH_CONTROLS = ControlKeys.with_prefix("")
WHAT_IF_SEGMENT = "what_if_segment"  # the prompt segment chosen for "What if I delete this?"

# Compare page (controls are linked across its panes; kept apart from the workbench's)
COMPARE_CONTROLS = ControlKeys.with_prefix("compare_")
COMPARE_HEATMAP_PREFIX = COMPARE_CONTROLS.heatmap + "::"  # + the pane's uid
COMPARE_TARGET_MODE = "compare_target_mode"  # "anchor", "reference" or "output"
COMPARE_ANCHOR = "compare_anchor"  # leading words of the output part to explain in every variant
COMPARE_REFERENCE = "compare_reference"
COMPARE_BY_SENTENCE = "compare_by_sentence"
COMPARE_DIFF_A = "compare_diff_a"
COMPARE_DIFF_B = "compare_diff_b"
COMPARE_EXPORT_SCOPE = "compare_export_scope"
COMPARE_ADD_SAMPLE = "compare_add_sample"
COMPARE_EDIT_PREFIX = "compare_edit::"  # + uid + "::" + field


def edit_key(prefix: str, item: str, name: str) -> str:
    """The key of one field of an item edited in place: Compare's variants, Evaluate's sources."""
    return f"{prefix}{item}::{name}"


def child_key(parent: str, name: object) -> str:
    """The key of one of several widgets of a kind: "<parent>-<name>" (a row's button, a block's)."""
    return f"{parent}-{name}"


DELETION_AGREEMENT = "deletion-agreement"  # the workbench's agreement line (+ "-sentences", "-show")
DELETION_PANE = "deletion"  # child_key(DELETION_PANE, uid): a Compare pane's agreement line


# History
HISTORY_SEARCH = "history_search"
HISTORY_TEMPLATE = "history_template"
HISTORY_VARIABLE = "history_variable"
HISTORY_MODEL = "history_model"
HISTORY_DATES = "history_dates"
HISTORY_RATING = "history_rating"
HISTORY_WITH_NOTES = "history_with_notes"
HISTORY_TABLE = "history_table"
HISTORY_SALIENCE = "history_salience"
HISTORY_VERSION_A = "history_version_a"
HISTORY_VERSION_B = "history_version_b"
HISTORY_DIFF_TEMPLATE = "history_diff_template"
HISTORY_HEATMAP = "history_heatmap"
HISTORY_RESTORE = "restore"  # child_key(HISTORY_RESTORE, version id): "Restore … into the workbench"
HISTORY_DELETE_RUN = "history-delete-run"  # child_key(HISTORY_DELETE_RUN, run id)
NOTE_TEXT = "note_text"  # + "_" + the run or comparison
NOTE_RATING = "note_rating"  # + "_" + the run or comparison

# Evaluate page (issue 12): variants over a table of inputs with checks
EVAL_SOURCES = "eval_sources"  # the chosen variant sources (labels)
EVAL_EDIT_PREFIX = "eval_edit::"  # + source label + "::name" / "::template"
EVAL_DATA_SOURCE = "eval_data_source"  # a shipped set's file name, "upload" or "paste"
EVAL_UPLOAD = "eval_upload"
EVAL_PASTE = "eval_paste"
EVAL_EDITOR = "eval_editor"
EVAL_CHECKS = "eval_checks"  # the checks editor
EVAL_EXPECTED = "eval_expected"  # the expected-answer column ("" = none)
EVAL_MAX_NEW_TOKENS = "eval_max_new_tokens"
EVAL_STOP = "eval_stop"
EVAL_BATCH = "eval_batch"
EVAL_WHY = "eval_why"  # explain each row with the fast gradient method
EVAL_ANCHOR = "eval_anchor"  # the output part to explain, by its first word
EVAL_SEARCH = "eval_search"
EVAL_NEW = "eval-new"
EVAL_RUN = "eval-run"
EVAL_CANCEL = "eval-cancel"
EVAL_RESUME = "eval-resume"
EVAL_ROW = "eval-row"  # child_key(EVAL_ROW, evaluation id): the row picker
EVAL_ROW_DELETION = "eval-del"  # child_key(EVAL_ROW_DELETION, "evaluation:variant:row")
EVAL_ROW_OPEN = "eval-open"  # child_key(EVAL_ROW_OPEN, "evaluation:variant:row")
EVAL_CSV = "eval-csv"
EVAL_JSONL = "eval-jsonl"
EVAL_HTML = "eval-html"
EVAL_LIST_OPEN = "eval-list-open"  # child_key(EVAL_LIST_OPEN, evaluation id)
EVAL_LIST_DELETE = "eval-list-del"  # child_key(EVAL_LIST_DELETE, evaluation id)

# Blind review (issue 24): the reviewer's page, its results and the form that makes a review
REVIEW_FORM = "review-form"
REVIEW_FIRST = "review_first"
REVIEW_SECOND = "review_second"
REVIEW_ROWS = "review_rows"
REVIEW_NAME = "review_name"
REVIEW_INSTRUCTIONS = "review_instructions"
REVIEW_ASK_REASON = "review_ask_reason"
REVIEW_PER_ITEM = "review_per_item"
REVIEW_REASON = "review_reason"  # child_key(REVIEW_REASON, item id)
REVIEW_ANSWER = "review-answer"  # child_key(REVIEW_ANSWER, "A" | "B" | "same" | "neither")
REVIEW_BACK = "review-back"
REVIEW_NEXT = "review-next"
REVIEW_WHY = "review_why"  # which output to explain, once the answer is given
REVIEW_WHY_HEATMAP = "review_why_heatmap"  # child_key(REVIEW_WHY_HEATMAP, "item:side")
REVIEW_CSV = "review-csv"
REVIEW_JSONL = "review-jsonl"
REVIEW_HTML = "review-html"
REVIEW_OPEN = "review-open"  # child_key(REVIEW_OPEN, "item:variant")
REVIEW_LIST_DELETE = "review-list-del"  # child_key(REVIEW_LIST_DELETE, review id)
SIGN_IN = "sign_in"  # the sign-in page's button
SIGN_OUT = "sign_out"  # the sidebar's sign-out
SIGN_OUT_REFUSED = "sign_out_refused"  # sign-out on the page that refuses an account

SESSION_KEYS = frozenset(
    {
        MODEL_SPEC,
        MODEL_ERROR,
        MODEL_FALLBACK,
        MODEL_IN_PROCESS,
        MODEL_EXPECTED,
        DELETION_OWNER,
        BROWSER_ID,
        WORKSPACE_RESTORED,
        WORKSPACE_ERROR,
        WORKSPACE_NOTICE,
        SAVE_FAILURE,
        PENDING_WRITES,
        DRAFTS,
        SAVED_STATE_HASH,
        TEMPLATE_VERSION,
        RUN_IDS,
        RECORDED_SALIENCE,
    }
)

DEFAULTS = {
    MODEL_SPEC: "embedded",
    PRECISION: "bfloat16",
    TEMPLATE: "",
    REFERENCE_TARGET: "",
    USE_REFERENCE: False,
    MAX_NEW_TOKENS: 48,
    STOP_SEQUENCES: "\\n\\n",
    SAMPLING: False,
    TEMPERATURE: 0.8,
    TOP_K: 40,
    TOP_P: 0.95,
    SEED: 0,
    CHAT_TEMPLATE: False,
    AUTO_RERUN: True,
    **WORKBENCH_CONTROLS.defaults(granularity="sentences"),
    MODEL_ERROR: None,
    MODEL_FALLBACK: None,
    MODEL_IN_PROCESS: False,
    MODEL_EXPECTED: None,
    COMPARE_TARGET_MODE: "anchor",
    COMPARE_ANCHOR: "Recommendation",
    COMPARE_REFERENCE: "",
    **COMPARE_CONTROLS.defaults(granularity="sentences"),
    COMPARE_BY_SENTENCE: True,
    BROWSER_ID: None,
    WORKSPACE_RESTORED: False,
    WORKSPACE_ERROR: None,
    WORKSPACE_NOTICE: None,
    SAVE_FAILURE: None,
    PENDING_WRITES: [],
    DRAFTS: {},
    RUN_IDS: {},
    RECORDED_SALIENCE: set(),
    REVIEWER: "",
    EVAL_SOURCES: ["Sample: fewshot-mistake", "Sample: fewshot-fixed"],
    EVAL_DATA_SOURCE: "menu_recommendations.csv",
    EVAL_EXPECTED: "expected",
    EVAL_MAX_NEW_TOKENS: 40,
    EVAL_STOP: "\\n\\n",
    EVAL_BATCH: 8,
    EVAL_WHY: True,
    EVAL_ANCHOR: "Recommendation",
}

# What a permalink restores: the workbench's prompt and settings and the whole comparison.
# Widget values are saved under their keys, and these workbench fields under their own names
# (the names they had as keys, so links and autosaved states made before still restore).
SNAPSHOT_FIELDS = ("sample_source", "variables", "selection")
SNAPSHOT_KEYS = (
    MODEL_SPEC,
    PRECISION,
    TEMPLATE,
    REFERENCE_TARGET,
    USE_REFERENCE,
    MAX_NEW_TOKENS,
    STOP_SEQUENCES,
    SAMPLING,
    TEMPERATURE,
    TOP_K,
    TOP_P,
    SEED,
    CHAT_TEMPLATE,
    WORKBENCH_CONTROLS.method,
    WORKBENCH_CONTROLS.granularity,
    WORKBENCH_CONTROLS.regex,
    WORKBENCH_CONTROLS.aggregation,
    WORKBENCH_CONTROLS.intensity,
    COMPARE_TARGET_MODE,
    COMPARE_ANCHOR,
    COMPARE_REFERENCE,
    COMPARE_CONTROLS.method,
    COMPARE_CONTROLS.granularity,
    COMPARE_CONTROLS.regex,
    COMPARE_CONTROLS.aggregation,
    COMPARE_CONTROLS.intensity,
    COMPARE_BY_SENTENCE,
)


def init_state() -> None:
    """Fill in defaults for keys the session does not have yet, and each page's state."""
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = type(value)(value) if isinstance(value, dict | list | set) else value
    for key, kind in PAGE_KEYS.items():
        _page(key, kind)
