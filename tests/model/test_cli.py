"""The CLI on a tiny GGUF model: JSON shapes, templates, and one-line errors."""

import json
import subprocess
import sys

import pytest

from salience.attribution.methods import DEFAULT_METHOD
from salience.cli.commands import main

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def run(capsys, *args):
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def explain(capsys, tmp_path, spec, prompt: str, target: str, *options):
    """``explain --json`` on a prompt written to a file; (status, stdout, stderr)."""
    path = tmp_path / "prompt.txt"
    path.write_text(prompt)
    return run(
        capsys, "explain", "--model", spec, "--prompt-file", str(path), "--target", target, "--json", *options
    )


@pytest.mark.slow  # over ~5 s: left out of the fast loop
def test_explain_without_a_method_computes_the_pages_default(tmp_path, capsys, tiny_spec):
    """No --method: the Deletion estimate over sentences, named first in the JSON's methods."""
    prompt = "Taste-likes: Cheese. Taste-dislikes: Fish.\nRecommendation:"
    status, out, err = explain(capsys, tmp_path, tiny_spec, prompt, " Avoid it.")
    assert status == 0, err
    payload = json.loads(out)
    assert payload["methods"][0] == DEFAULT_METHOD == "deletion_estimate"
    assert payload["granularity"] == "sentences"
    checked = payload["diagnostics"][DEFAULT_METHOD]["checked"]
    assert checked and all(end > start for start, end in checked)  # some segments deleted for real
    prompt_rows = [row for row in payload["segments"] if not row["in_target"]]
    assert any(abs(row[DEFAULT_METHOD]) > 0 for row in prompt_rows)


@pytest.mark.slow  # over ~5 s: left out of the fast loop
def test_explain_json_is_aligned(tmp_path, capsys, tiny_spec):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Taste-likes: Cheese.\nRecommendation:")
    status, out, err = run(
        capsys,
        "explain",
        "--model",
        tiny_spec,
        "--prompt-file",
        str(prompt),
        "--target",
        " Avoid it.",
        "--method",
        "grad_l2",
        "--method",
        "grad_dot_input",
        "--method",
        "integrated_gradients",
        "--steps",
        "4",
        "--granularity",
        "sentences",
        "--json",
        "--quiet",
    )
    assert status == 0, err
    payload = json.loads(out)
    n = len(payload["tokens"])
    assert len(payload["offsets"]) == n
    for method in ("grad_l2", "grad_dot_input", "integrated_gradients"):
        assert len(payload["scores"][method]) == n
    start, end = payload["target_token_span"]
    assert end == n and all(v == 0 for v in payload["scores"]["grad_l2"][start:])
    assert payload["format_version"] == 2 and payload["provenance"]["model"]
    assert set(payload["provenance"]["parameters"]["integrated_gradients"]) == {"baseline", "steps"}
    assert payload["segments"][-1]["in_target"] and payload["segments"][-1]["text"] == " Avoid it."
    assert "".join(s["text"] for s in payload["segments"]) == payload["text"]


@pytest.mark.slow  # over ~5 s: left out of the fast loop
def test_explain_template_rollup(tmp_path, capsys, tiny_spec):
    template = tmp_path / "t.txt"
    template.write_text("Likes: {food}\nDislikes: {bad}\nAnalysis:")
    status, out, err = run(
        capsys,
        "explain",
        "--model",
        tiny_spec,
        "--template-file",
        str(template),
        "--var",
        "food=Cheese",
        "--var",
        "bad=eggs",
        "--target",
        " no",
        "--granularity",
        "slots",
        "--json",
        "--quiet",
    )
    assert status == 0, err
    payload = json.loads(out)
    names = [row["name"] for row in payload["rollup"][DEFAULT_METHOD]]
    assert names == ["text 1", "food", "text 2", "bad", "text 3"]
    assert sum(row["share"] for row in payload["rollup"][DEFAULT_METHOD]) == pytest.approx(1.0)
    status, out, _ = run(
        capsys,
        "explain",
        "--model",
        tiny_spec,
        "--template-file",
        str(template),
        "--var",
        "food=Cheese",
        "--var",
        "bad=eggs",
        "--target",
        " no",
        "--quiet",
    )
    assert status == 0 and "Explaining: ' no'" in out and "by template slot" in out


def test_generate_json(tmp_path, capsys, tiny_spec):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Recommendation:")
    status, out, err = run(
        capsys,
        "generate",
        "--model",
        tiny_spec,
        "--prompt-file",
        str(prompt),
        "--max-new-tokens",
        "5",
        "--json",
        "--quiet",
    )
    assert status == 0, err
    payload = json.loads(out)
    assert len(payload["token_ids"]) <= 5 and payload["stop_reason"] in ("max_new_tokens", "end_of_text")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "--prompt-file", "/nonexistent", "--target", "x"], "does not exist"),
        (["explain", "--prompt-file", "{empty}", "--target", "x"], "prompt is empty"),
        (["explain", "--prompt-file", "{prompt}", "--target", ""], "target is empty"),
        (["explain", "--prompt-file", "{prompt}", "--target", "x", "--span", "1-2"], "START:END"),
        (["explain", "--prompt-file", "{prompt}", "--target", "x", "--span", "0:999"], "outside the text"),
        (["explain", "--template-file", "{broken}", "--target", "x"], "line 1, column 3"),
        (["explain", "--template-file", "{template}", "--target", "x"], "needs a value for food"),
        (
            ["explain", "--prompt-file", "{prompt}", "--target", "x", "--granularity", "slots"],
            "needs a template",
        ),
        (
            [
                "explain",
                "--prompt-file",
                "{prompt}",
                "--target",
                "x",
                "--granularity",
                "regex",
                "--regex",
                "(",
            ],
            "not a valid regular",
        ),
        (["generate", "--prompt-file", "{binary}"], "not UTF-8"),
        (
            ["generate", "--prompt-file", "{prompt}", "--max-new-tokens", "0"],
            "--max-new-tokens must be at least 1",
        ),
    ],
)
def test_user_errors_are_one_line(tmp_path, capsys, tiny_spec, args, message):
    files = {
        "{empty}": "",
        "{prompt}": "Hello there",
        "{broken}": "a {",
        "{template}": "Likes {food}",
        "{binary}": None,
    }
    paths = {}
    for key, content in files.items():
        path = tmp_path / key.strip("{}")
        if content is None:
            path.write_bytes(b"\xff\xfe\x00")
        else:
            path.write_text(content)
        paths[key] = str(path)
    argv = [paths.get(a, a) for a in args] + ["--model", tiny_spec, "--quiet"]
    status, out, err = run_args(capsys, *argv)
    assert status == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.slow  # over ~5 s: left out of the fast loop
def test_unknown_model_in_a_real_process(tmp_path):
    prompt = tmp_path / "p.txt"
    prompt.write_text("hi")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "salience",
            "generate",
            "--model",
            "nonsense-model",
            "--prompt-file",
            str(prompt),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: Unknown model 'nonsense-model'")
    assert "Traceback" not in result.stderr


def test_missing_local_preset(capsys, tmp_path):
    prompt = tmp_path / "p.txt"
    prompt.write_text("hi")
    status, _, err = run(capsys, "generate", "--model", f"preset:{tmp_path}", "--prompt-file", str(prompt))
    assert status == 2 and "not a KerasHub preset directory" in err


def test_explain_occlusion_carries_segment_scores(tmp_path, capsys, tiny_spec):
    prompt = "Tom lives in Paris. Anna has a bike.\nWhere does Tom live?"
    status, out, err = explain(
        capsys,
        tmp_path,
        tiny_spec,
        prompt,
        " Paris.",
        "--method",
        "occlusion",
        "--granularity",
        "sentences",
        "--quiet",
    )
    assert status == 0, err
    payload = json.loads(out)
    scores = payload["scores"]["occlusion"]
    assert payload["provenance"]["parameters"]["occlusion"]["granularity"] == "sentences"
    deleted = payload["diagnostics"]["occlusion"]["segments"]
    prompt_segments = [s for s in payload["segments"] if not s["in_target"] and s["text"]]
    assert len(deleted) == 3 == len(prompt_segments)
    for segment, (start, end) in zip(prompt_segments, deleted):
        assert segment["token_start"] == start and segment["token_end"] == end
        assert all(value == pytest.approx(segment["occlusion"]) for value in scores[start:end])
    assert any(abs(s["occlusion"]) > 0 for s in prompt_segments)


def test_explain_occlusion_over_the_limit_is_one_line(tmp_path, capsys, tiny_spec):
    prompt = tmp_path / "p.txt"
    prompt.write_text("a " * 80)
    status, _, err = run(
        capsys,
        "explain",
        "--model",
        tiny_spec,
        "--prompt-file",
        str(prompt),
        "--target",
        " b",
        "--method",
        "occlusion",
        "--granularity",
        "tokens",
        "--quiet",
    )
    assert status == 2 and "coarser granularity" in err and "Traceback" not in err


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if the CLI loads a model: input errors must come before the 20-30 s load."""
    import salience.model.loader

    def load_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(salience.model.loader, "load_model", load_model)


def run_args(capsys, *args):
    """``main`` as the shell sees it: argparse's own errors exit through SystemExit."""
    try:
        status = main(list(args))
    except SystemExit as exit:
        status = exit.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--temperature", "nan", "--temperature must be a finite number, got 'nan'"),
        ("--temperature", "inf", "--temperature must be a finite number"),
        ("--temperature", "-1", "--temperature must be at least 0"),
        ("--temperature", "hot", "--temperature must be a finite number, got 'hot'"),
        ("--seed", "-1", "--seed must be at least 0"),
        ("--top-k", "-1", "--top-k must be at least 1"),
        ("--top-k", "0", "--top-k must be at least 1"),
        ("--top-p", "2", "--top-p must be at most 1"),
        ("--top-p", "0", "--top-p must be above 0"),
        ("--max-new-tokens", "0", "--max-new-tokens must be at least 1"),
        ("--max-new-tokens", "100000", "--max-new-tokens must be at most 4096"),
    ],
)
def test_bad_generation_numbers_are_one_line(tmp_path, capsys, no_model_load, option, value, message):
    prompt = tmp_path / "p.txt"
    prompt.write_text("Hello")
    status, out, err = run_args(capsys, "generate", "--prompt-file", str(prompt), option, value)
    assert status == 2 and out == ""
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--top", "-1"], "--top must be at least 1"),
        (["--steps", "0"], "--steps must be at least 1"),
        (["--span", "30:10"], "--span 30:10 is reversed: START comes first (did you mean 10:30?)"),
        (["--span", "5:5"], "is empty"),
        (["--span", "2:6"], "--span 2:6 starts inside the prompt (0:11)"),
        (["--span", "8:13"], "starts inside the prompt"),
        (["--span", "11:99"], "outside the text"),
        (["--granularity", "sentence"], "invalid choice: 'sentence'"),
        (["--granularity", "regex", "--regex", "("], "not a valid regular"),
        (["--target", ""], "target is empty"),
    ],
)
def test_explain_input_is_checked_before_the_model_loads(tmp_path, capsys, no_model_load, extra, message):
    prompt = tmp_path / "p.txt"
    prompt.write_text("Hello there")
    args = ["explain", "--prompt-file", str(prompt), "--target", " friend"]
    if "--target" in extra:
        args = args[:-2]
    status, out, err = run_args(capsys, *args, *extra)
    assert status == 2 and out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_empty_prompt_is_refused_before_the_model_loads(tmp_path, capsys, no_model_load):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    status, _, err = run_args(capsys, "generate", "--prompt-file", str(empty))
    assert status == 2 and "prompt is empty" in err


@pytest.mark.slow  # over ~5 s: left out of the fast loop
def test_no_tensorflow_lines_before_the_error_line(tmp_path):
    """A failure after TensorFlow has loaded still prints exactly one line."""
    prompt = tmp_path / "p.txt"
    prompt.write_text("hi")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "salience",
            "generate",
            "--model",
            f"preset:{tmp_path}",
            "--prompt-file",
            str(prompt),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("error: ") and "not a KerasHub preset directory" in result.stderr


def test_a_rebuilt_cache_is_said_even_with_quiet(tmp_path, capsys, tiny_spec, monkeypatch):
    import salience.model.loader

    load = salience.model.loader.load_model

    def load_with_notice(spec, progress=None):
        model = load(spec, progress)
        model.notice = "The model cache was damaged: model.weights.h5 is truncated; it was rebuilt."
        return model

    monkeypatch.setattr(salience.model.loader, "load_model", load_with_notice)
    prompt = tmp_path / "p.txt"
    prompt.write_text("Recommendation:")
    status, out, err = run_args(
        capsys,
        "generate",
        "--model",
        tiny_spec,
        "--prompt-file",
        str(prompt),
        "--max-new-tokens",
        "2",
        "--quiet",
    )
    assert (
        status == 0
        and err == "note: The model cache was damaged: model.weights.h5 is truncated; it was rebuilt.\n"
    )
