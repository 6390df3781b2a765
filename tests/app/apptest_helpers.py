"""Small helpers shared by the AppTest modules: run a script and find widgets by label."""

from __future__ import annotations


def run(app):
    """Run the app (or rerun it after an interaction) and fail on any exception it shows."""
    app.run()
    assert not app.exception, app.exception
    return app


def button(app, label):
    return next(b for b in app.button if b.label == label)


def text_area(app, label):
    return next(t for t in app.text_area if t.label == label)


def pin(app, sample: str | None = None):
    """Generate on the workbench (after picking ``sample``) and send the output to Compare."""
    if sample:
        next(s for s in app.selectbox if s.label == "Sample prompt").set_value(sample)
        run(app)
    button(app, "Generate").click()
    run(app)
    button(app, "📌 Send to compare").click()
    return run(app)
