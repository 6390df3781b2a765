"""Word diffs as HTML (text escaped; insertions green, deletions red and struck through)."""

from __future__ import annotations

import html

from salience.compare import OutputDiff


def diff_html(diff: OutputDiff, test_id: str = "output-diff") -> str:
    """A box with the diff of two texts, for ``st.html``."""
    parts = []
    for op in diff.ops:
        escaped = html.escape(op.text)
        if op.op == "insert":
            parts.append(f'<ins style="background:#dcfce7;text-decoration:none">{escaped}</ins>')
        elif op.op == "delete":
            parts.append(f'<del style="background:#fde2e2">{escaped}</del>')
        else:
            parts.append(escaped)
    return (
        f'<div data-testid="{test_id}" style="font-family:ui-monospace,monospace;white-space:pre-wrap;'
        'border:1px solid #d4d4d8;border-radius:8px;padding:8px;font-size:.9rem">' + "".join(parts) + "</div>"
    )
