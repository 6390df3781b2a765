"""Every session-state key the app uses, named in one place, with defaults."""

from __future__ import annotations

import streamlit as st

MODEL_SPEC = "model_spec"
MODEL_SPEC_INPUT = "model_spec_input"
MODEL_ERROR = "model_error"
MODEL_FALLBACK = "model_fallback"  # the spec in use before a load was asked for
GENERATE_PENDING = "generate_pending"  # Generate was clicked while the model loaded
PRECISION = "precision"

SAMPLE_SOURCE = "sample_source"  # the sample the prompt came from (kept while it is edited)
SAMPLE_PICKER = "sample_picker"  # the picker widget: a sample's name, or CUSTOM once the text is edited
UPLOADER = "uploader"
UPLOAD_MESSAGE = "upload_message"  # ("info" | "error", text) about the last uploaded file
LOADED_SAMPLE = "loaded_sample"
UPLOADED_EXAMPLES = "uploaded_examples"
TEMPLATE = "template"
VARIABLES = "variables"  # dict name -> value, kept when the template changes
VARIABLE_WIDGET_PREFIX = "var::"
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

GENERATION = "generation"  # salience.types.Generation of the current prompt
GENERATED_FOR = "generated_for"  # the key of the inputs that produced GENERATION
SELECTION = "selection"  # (start, end, text): characters relative to the explained text's start
METHOD = "method"
GRANULARITY = "granularity"
REGEX = "regex"
AGGREGATION = "aggregation"
INTENSITY = "intensity"
HEATMAP = "heatmap"
PROMPT_LENGTH = "prompt_length"  # where the explained text starts in the heatmap's text
EXPLAINED_TEXT = "explained_text"  # prompt + explained text, as drawn in the heatmap
DELETION_OWNER = "deletion_owner"  # this session's id for its background Deletion job
WHAT_IF = "what_if"  # the last "What if I delete this?" result (components/deletion.py)
WHAT_IF_SEGMENT = "what_if_segment"  # the prompt segment chosen for it

# Compare page (controls are linked across its panes; kept apart from the workbench's).
COMPARE_VARIANTS = "compare_variants"  # list[salience.compare.Variant], at most MAX_VARIANTS
COMPARE_TARGET_MODE = "compare_target_mode"  # "anchor", "reference" or "output"
COMPARE_ANCHOR = "compare_anchor"  # leading words of the output part to explain in every variant
COMPARE_REFERENCE = "compare_reference"
COMPARE_METHOD = "compare_method"
COMPARE_GRANULARITY = "compare_granularity"
COMPARE_REGEX = "compare_regex"
COMPARE_AGGREGATION = "compare_aggregation"
COMPARE_INTENSITY = "compare_intensity"
COMPARE_BY_SENTENCE = "compare_by_sentence"
COMPARE_DIFF_A = "compare_diff_a"
COMPARE_DIFF_B = "compare_diff_b"
COMPARE_EXPORT_SCOPE = "compare_export_scope"
COMPARE_ADD_SAMPLE = "compare_add_sample"
COMPARE_PANE_TEXT = "compare_pane_text"  # uid -> heatmap text, to read clicks
COMPARE_HEATMAP_PREFIX = "compare_heatmap::"
COMPARE_EDIT_PREFIX = "compare_edit::"  # + uid + "::" + field
COMPARE_PNG = "compare_png"  # (hash of the HTML export, PNG bytes) once rendered
PRESENTING = "presenting"
PRESENT_INDEX = "present_index"
PERMALINK_ID = "permalink_id"  # the id of the link this session made last
APPLIED_SNAPSHOT = "applied_snapshot"  # the ?c= id already restored into this session
PIN_MESSAGE = "pin_message"

# Workspace (autosave and restore)
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
NOTE_TEXT = "note_text"
NOTE_RATING = "note_rating"

# Evaluate page (issue 12): variants over a table of inputs with checks.
EVAL_SOURCES = "eval_sources"  # the chosen variant sources (labels)
EVAL_EDIT_PREFIX = "eval_edit::"  # + source label + "::name" / "::template"
EVAL_DATA_SOURCE = "eval_data_source"  # a shipped set's file name, "upload" or "paste"
EVAL_UPLOAD = "eval_upload"
EVAL_PASTE = "eval_paste"
EVAL_TABLE = "eval_table"  # the data as a DataFrame (what the editor shows and edits)
EVAL_TABLE_FROM = "eval_table_from"  # what EVAL_TABLE was loaded from (reloads when it changes)
EVAL_EDITOR = "eval_editor"
EVAL_CHECKS = "eval_checks"  # the checks editor
EVAL_EXPECTED = "eval_expected"  # the expected-answer column ("" = none)
EVAL_MAX_NEW_TOKENS = "eval_max_new_tokens"
EVAL_STOP = "eval_stop"
EVAL_BATCH = "eval_batch"
EVAL_WHY = "eval_why"  # explain each row with the fast gradient method
EVAL_ANCHOR = "eval_anchor"  # the output part to explain, by its first word
EVAL_OPEN = "eval_open"  # the workspace id of the evaluation shown (and run) on the page
EVAL_MESSAGE = "eval_message"  # ("error" | "info", text) from the last Run click
EVAL_SEARCH = "eval_search"
EVAL_DELETION = "eval_deletion"  # (evaluation id, row, variant) -> Deletion shares

DEFAULTS = {
    MODEL_SPEC: "embedded",
    PRECISION: "bfloat16",
    SAMPLE_SOURCE: "fewshot-mistake",
    TEMPLATE: "",
    VARIABLES: {},
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
    GENERATION: None,
    GENERATED_FOR: None,
    SELECTION: None,
    METHOD: "grad_l2",
    GRANULARITY: "words",
    REGEX: "^Recommendation",
    AGGREGATION: "sum",
    INTENSITY: 1.0,
    MODEL_ERROR: None,
    MODEL_FALLBACK: None,
    GENERATE_PENDING: False,
    COMPARE_VARIANTS: [],
    COMPARE_TARGET_MODE: "anchor",
    COMPARE_ANCHOR: "Recommendation",
    COMPARE_REFERENCE: "",
    COMPARE_METHOD: "grad_l2",
    COMPARE_GRANULARITY: "sentences",
    COMPARE_REGEX: "^Recommendation",
    COMPARE_AGGREGATION: "sum",
    COMPARE_INTENSITY: 1.0,
    COMPARE_BY_SENTENCE: True,
    COMPARE_PANE_TEXT: {},
    PRESENTING: False,
    PRESENT_INDEX: 0,
    PERMALINK_ID: None,
    APPLIED_SNAPSHOT: None,
    PIN_MESSAGE: None,
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
    EVAL_OPEN: None,
    EVAL_MESSAGE: None,
    EVAL_DELETION: {},
}

# What a permalink restores: the workbench's prompt and settings and the whole comparison.
SNAPSHOT_KEYS = (
    MODEL_SPEC,
    PRECISION,
    SAMPLE_SOURCE,
    TEMPLATE,
    VARIABLES,
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
    SELECTION,
    METHOD,
    GRANULARITY,
    REGEX,
    AGGREGATION,
    INTENSITY,
    COMPARE_TARGET_MODE,
    COMPARE_ANCHOR,
    COMPARE_REFERENCE,
    COMPARE_METHOD,
    COMPARE_GRANULARITY,
    COMPARE_REGEX,
    COMPARE_AGGREGATION,
    COMPARE_INTENSITY,
    COMPARE_BY_SENTENCE,
)


def init_state() -> None:
    """Fill in defaults for keys the session does not have yet."""
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = type(value)(value) if isinstance(value, dict | list | set) else value
