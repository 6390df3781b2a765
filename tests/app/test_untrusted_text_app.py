"""User text is shown as text, never as Markdown: an image in a reviewer name, a note, a variable
value, a JSONL notes field or a Compare variant name would make every viewer's browser fetch it."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from components import state
from components.model_resource import MODEL_ENV
from components.widgets import plain_markdown
from salience.core.types import Generation, GenerationSettings
from salience.prompts.variant_comparison import Variant
from workspace.store import Workspace

APP = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "app.py")
EVIL = "![x](http://attacker.invalid/pixel.png) **bold** [link](http://attacker.invalid/)"
SHOWN = plain_markdown(EVIL)
# Markdown that would render an image or a link: "![" or "](" not preceded by a backslash.
ACTIVE_MARKDOWN = re.compile(r"(?<!\\)!\[|(?<!\\)\]\(")


def markdown_texts(app: AppTest) -> list[str]:
    """Every string the page hands to Streamlit's Markdown renderer (bodies and labels)."""
    texts = []
    for kind in (
        "markdown",
        "caption",
        "subheader",
        "header",
        "title",
        "error",
        "warning",
        "info",
        "success",
    ):
        texts += [str(element.value) for element in getattr(app, kind)]
    texts += [str(toast.value) for toast in app.toast]
    for kind in ("tabs", "expander", "button"):
        texts += [str(element.label) for element in getattr(app, kind)]
    return texts


def assert_shown_as_text(app: AppTest, places: int = 1) -> None:
    texts = markdown_texts(app)
    active = [text for text in texts if ACTIVE_MARKDOWN.search(text)]
    assert not active, active
    assert sum(SHOWN in text for text in texts) >= places, texts  # the text is there, escaped


@pytest.fixture
def tiny_app_env(tiny_gguf, monkeypatch):
    monkeypatch.setenv(MODEL_ENV, f"gguf:{tiny_gguf}")


def _run(app: AppTest) -> AppTest:
    app.run()
    assert not app.exception, app.exception
    return app


def test_history_shows_names_notes_and_values_as_text(tiny_app_env, data_dir):
    saved = Workspace.open(f"sqlite:///{data_dir / 'workspace.sqlite3'}")
    saved.save_template_version(EVIL, "Say {x}.", {"x": "hello"})
    version = saved.save_template_version(EVIL, "Say {x}.", {"x": EVIL})
    run_id = saved.record_run(
        Generation(f"Say {EVIL}.", " ok", (1,), "max_new_tokens", 0.5, 0.1),
        "m",
        "float32",
        GenerationSettings(max_new_tokens=4),
        variables={"x": EVIL},
        version_id=version,
    )
    saved.add_note(EVIL, EVIL, 1, run_id=run_id)
    saved.close()
    app = AppTest.from_file(APP, default_timeout=180)
    app.session_state[state.BROWSER_ID] = "browser-untrusted"
    app.session_state[state.REVIEWER] = EVIL
    app.query_params["run"] = str(run_id)
    app.switch_page("app_pages/history.py")
    _run(app)
    # run heading (template name), the note's reviewer and text, "As <reviewer>", the version diff's value
    assert_shown_as_text(app, places=4)


def test_workbench_shows_a_jsonl_notes_field_as_text(app):
    example = Variant("uploaded", "Say {x}.", {"x": "hi"}, notes=EVIL)
    app.session_state[state.WORKBENCH].uploaded = [example]
    _run(app)
    next(s for s in app.selectbox if s.label == "Sample prompt").set_value("uploaded")
    _run(app)
    assert_shown_as_text(app)


@pytest.mark.parametrize("presenting", [False, True])
def test_compare_shows_variant_names_as_text(app, presenting):
    app.session_state[state.COMPARE].variants = [
        Variant(EVIL, "Say {x}.", {"x": EVIL}, output=" ok"),
        Variant("plain", "Say {x}.", {"x": "hi"}, output=" ok"),
    ]
    app.switch_page("app_pages/compare.py")
    _run(app)
    if presenting:
        next(b for b in app.button if "Present" in b.label).click()
        _run(app)
        assert app.session_state[state.COMPARE].presenting
        assert any(m.value.startswith("### 1 / 2 · ") and SHOWN in m.value for m in app.markdown)
    assert_shown_as_text(app, places=1 if presenting else 2)
