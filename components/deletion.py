"""Deletion beside the first colours: the public face of the Deletion modules.

After a click the first colours (the Deletion estimate, `DEFAULT_METHOD`) are drawn at once;
Deletion (one model pass per prompt segment) follows as a check in the background. Where each
part lives:

- `components.deletion_jobs`: the process-wide `DeletionRunner` (`runner()`), its jobs and cache;
- `components.deletion_plan`: what Deletion removes for a view (`plan`, `resolve`, `merged`);
- `components.deletion_agreement`: the agreement line and its progress (`agreement`);
- `components.what_if`: "What if I delete this?".
"""

from components.deletion_agreement import agreement, pane_agreement, progress_text, redundancy_note
from components.deletion_jobs import (
    DELETION_WORKERS,
    KEPT_RESULTS,
    DeletionJob,
    DeletionRunner,
    runner,
    stop_other_pages,
)
from components.deletion_plan import (
    COMPARED_WITH,
    FALLBACK_GRANULARITY,
    Follow,
    Plan,
    cancel_stale,
    click_segments,
    compare_scores,
    gradient_methods,
    merged,
    plan,
    resolve,
)
from components.what_if import what_if

__all__ = [
    "COMPARED_WITH",
    "DELETION_WORKERS",
    "FALLBACK_GRANULARITY",
    "KEPT_RESULTS",
    "DeletionJob",
    "DeletionRunner",
    "Follow",
    "Plan",
    "agreement",
    "cancel_stale",
    "click_segments",
    "compare_scores",
    "gradient_methods",
    "merged",
    "pane_agreement",
    "plan",
    "progress_text",
    "redundancy_note",
    "resolve",
    "runner",
    "stop_other_pages",
    "what_if",
]
