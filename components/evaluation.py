"""Evaluate a prompt across many inputs: the public face of the evaluation modules.

- `components.evaluation_setup`: the variants, data table, checks and settings, and starting a run;
- `components.evaluation_run`: the opened evaluation, its progress, one step of work per script run;
- `components.evaluation_results`: the summary, grid, row details, chart, exports and saved list.
"""

from components.evaluation_results import exports, grid, row_details, saved_list, summary, why_chart
from components.evaluation_run import opened_evaluation, progress, step
from components.evaluation_setup import (
    EVAL_DIR,
    PASTE,
    UPLOAD,
    checks_editor,
    data_table,
    settings_controls,
    setup,
    start,
    variant_picker,
)

__all__ = [
    "EVAL_DIR",
    "PASTE",
    "UPLOAD",
    "checks_editor",
    "data_table",
    "exports",
    "grid",
    "opened_evaluation",
    "progress",
    "row_details",
    "saved_list",
    "settings_controls",
    "setup",
    "start",
    "step",
    "summary",
    "variant_picker",
    "why_chart",
]
