"""Every session-state key the app uses, named in one place, with defaults."""

from __future__ import annotations

import streamlit as st

MODEL_SPEC = "model_spec"
MODEL_SPEC_INPUT = "model_spec_input"
MODEL_ERROR = "model_error"
PRECISION = "precision"

SAMPLE_SOURCE = "sample_source"
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
}


def init_state() -> None:
    """Fill in defaults for keys the session does not have yet."""
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = dict(value) if isinstance(value, dict) else value
