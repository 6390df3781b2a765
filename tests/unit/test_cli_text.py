"""Text options that are not valid Unicode (bytes that are not UTF-8 arrive as lone surrogates)
are refused in one line before any model loads: --stop, --target, --var, --regex, --check, and
a prompt on standard input."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from salience.cli.commands import main

ROOT = Path(__file__).resolve().parents[2]
BAD = "a\udcff"  # what Python makes of the bytes b"a\xff" in an argument


@pytest.fixture
def no_model_load(monkeypatch):
    import salience.model.loader

    def load_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(salience.model.loader, "load_model", load_model)


@pytest.fixture
def prompt(tmp_path) -> str:
    path = tmp_path / "p.txt"
    path.write_text("Hello {name}")
    return str(path)


def _run(capsys, *args: str) -> tuple[int, str]:
    try:
        status = main(list(args))
    except SystemExit as exit:
        status = exit.code
    out, err = capsys.readouterr()
    assert out == ""
    return status, err


@pytest.mark.parametrize(
    ("option", "args"),
    [
        ("--stop", ["generate", "--prompt-file", "{prompt}", "--stop", BAD]),
        ("--target", ["explain", "--prompt-file", "{prompt}", "--target", BAD]),
        ("--var", ["explain", "--template-file", "{prompt}", "--target", "x", "--var", BAD + "=x"]),
        ("--regex", ["explain", "--prompt-file", "{prompt}", "--target", "x", "--regex", BAD]),
        ("--check", ["evaluate", "--template-file", "{prompt}", "--data", "{prompt}", "--check", BAD]),
    ],
)
def test_a_text_option_that_is_not_unicode_is_refused_before_the_model_loads(
    capsys, no_model_load, prompt, option, args
):
    status, err = _run(capsys, *(prompt if a == "{prompt}" else a for a in args))
    assert status == 2
    assert err == (
        f"error: {option} is not valid text: character 2 is \\udcff, a lone surrogate (bytes that are not "
        "UTF-8, or a half of a character); pass UTF-8 text.\n"
    )


def test_a_file_name_may_hold_any_bytes(capsys, no_model_load, tmp_path):
    status, err = _run(capsys, "generate", "--prompt-file", str(tmp_path / BAD))
    assert status == 2 and "does not exist" in err  # the name is not refused as text


def test_a_prompt_on_standard_input_that_is_not_utf8_is_refused(capsys, no_model_load, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hello \udcff"))
    status, err = _run(capsys, "generate", "--prompt-file", "-")
    assert status == 2
    assert err.startswith("error: The prompt on standard input is not UTF-8 text: character 7 is \\udcff")


def test_the_bytes_from_a_shell_are_refused_at_once(prompt):
    """The real path: argv bytes that are not UTF-8, in a process that never loads a model."""
    done = subprocess.run(
        [sys.executable, "-m", "salience", "generate", "--prompt-file", prompt, "--stop", b"\xff\\n"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: --stop is not valid text: character 1 is \\udcff")
