"""The layers hold at run time: text and analysis modules (and the CLI's help) load no TensorFlow,
and the engine's explain call takes plain values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from salience.attribution.methods import DEFAULT_METHOD
from salience.core.errors import InputError
from salience.core.text import escape, escape_braces, excerpt, unescape
from salience.report.explain import ExplainRequest

ROOT = Path(__file__).resolve().parents[2]
TF_FREE_MODULES = [
    "salience.core.text",
    "salience.prompts.templates",
    "salience.prompts.segments",
    "salience.prompts.rollup",
    "salience.prompts.describe",
    "salience.attribution.agreement",
    "salience.report.views",
    "salience.prompts.variant_comparison",
    "salience.report.explain",
    "salience.report.export",
    "salience.prompts.samples",
    "salience.report.palette",
    "salience.cli.commands",
]
HEAVY = ("tensorflow", "keras", "keras_hub")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.split()


def test_text_and_analysis_modules_import_without_tensorflow():
    assert _loaded_after("\n".join(f"import {name}" for name in TF_FREE_MODULES)) == []


def test_cli_help_loads_no_tensorflow():
    assert _loaded_after("from salience.cli.commands import build_parser\nbuild_parser().format_help()") == []
    done = subprocess.run(
        [sys.executable, "-m", "salience", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "explain" in done.stdout


def test_the_probe_sees_tensorflow_when_it_is_loaded():
    """The probe itself can fail: a module that imports TensorFlow is reported."""
    assert "tensorflow" in _loaded_after(
        "import salience.model.forward\nsalience.model.forward.tf.constant(1)"
    )


def test_escapes_round_trip():
    for text in ("a\nb\tc\rd\\e", "\\n literal", ""):
        assert unescape(escape(text)) == text
    assert unescape(r"\n\n") == "\n\n"
    assert escape_braces("f({x})") == "f({{x}})"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short  text\n", 48, "short text"),
        ("the quick brown fox jumps", 16, "the quick brown…"),
        ("x" * 30, 10, "x" * 9 + "…"),
        ("", 10, ""),
    ],
)
def test_excerpt_cuts_at_words_and_never_to_nothing(text, limit, expected):
    assert excerpt(text, limit) == expected
    assert len(excerpt(text, limit)) <= limit


def test_explain_request_takes_plain_values_and_checks_before_any_model():
    request = ExplainRequest.from_template("Say {word}.", ["word=hi"], " ok", methods=("grad_l2", "grad_l2"))
    assert request.prompt == "Say hi." and request.rendered is not None
    assert request.methods == ("grad_l2",)
    assert ExplainRequest("p", "t", methods=()).methods == (DEFAULT_METHOD,)  # the page's default
    with pytest.raises(InputError, match="slots"):
        ExplainRequest("p", "t", granularity="slots")
