"""Word diffs as HTML (text escaped; insertions green, deletions red and struck through)."""

from __future__ import annotations

import jinja2

from salience.prompts.variant_comparison import OutputDiff

_DIFF = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    '<div data-testid="{{ test_id }}" style="font-family:ui-monospace,monospace;white-space:pre-wrap;'
    'border:1px solid #d4d4d8;border-radius:8px;padding:8px;font-size:.9rem">'
    "{% for op in ops %}"
    '{% if op.op == "insert" %}<ins style="background:#dcfce7;text-decoration:none">{{ op.text }}</ins>'
    '{% elif op.op == "delete" %}<del style="background:#fde2e2">{{ op.text }}</del>'
    "{% else %}{{ op.text }}{% endif %}"
    "{% endfor %}</div>"
)


def diff_html(diff: OutputDiff, test_id: str = "output-diff") -> str:
    """A box with the diff of two texts, for ``st.html``."""
    return _DIFF.render(ops=diff.ops, test_id=test_id)
