"""The versioned result format: SalienceResult.to_json/from_json round trips every method, and
results written in format 1 (before ``format_version``) still load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from salience.attribution.methods import REGISTRY
from salience.core.types import RESULT_FORMAT_VERSION, Provenance, SalienceResult

PROMPT = "Tom lives in Paris. Anna rides.\nWhere? "
TARGET = "Paris"
TOKENS = (
    "<bos>",
    "Tom",
    " lives",
    " in",
    " Paris",
    ".",
    " Anna",
    " rides",
    ".\n",
    "Where",
    "?",
    " ",
    "Paris",
)


def _offsets() -> tuple[tuple[int, int], ...]:
    spans, at = [(0, 0)], 0
    for token in TOKENS[1:]:
        spans.append((at, at + len(token)))
        at += len(token)
    return tuple(spans)


def every_method_result() -> SalienceResult:
    """One result holding every registered method, Deletion's segments and IG's diagnostics."""
    n, start = len(TOKENS), len(TOKENS) - 1
    rng = np.random.default_rng(7)
    scores = {}
    for name in REGISTRY:
        values = rng.normal(size=n).astype(np.float32)
        values[start:] = 0.0
        scores[name] = values
    segments = [[1, 6], [6, 9], [9, 12]]
    for a, b in segments:  # Deletion gives every token of a segment the segment's score
        scores["occlusion"][a:b] = scores["occlusion"][a]
    scores["occlusion"][0] = 0.0
    return SalienceResult(
        text=PROMPT + TARGET,
        prompt_length=len(PROMPT),
        tokens=TOKENS,
        offsets=_offsets(),
        target_token_span=(start, n),
        scores=scores,
        target_log_prob=-2.25,
        seconds=1.5,
        diagnostics={
            "occlusion": {"segments": segments, "log_prob": -2.25, "seconds": 0.75},
            "integrated_gradients": {
                "baseline": "pad",
                "steps": 16,
                "log_prob_input": -2.25,
                "log_prob_baseline": -7.5,
                "attribution_sum": 5.0,
                "completeness_gap": 0.25,
            },
        },
        provenance=Provenance(
            "embedded",
            "bfloat16",
            {
                **{name: {} for name in REGISTRY},
                "integrated_gradients": {"baseline": "pad", "steps": 16},
                "occlusion": {"granularity": "sentences", "pattern": None},
            },
        ),
    )


def old_to_json(result: SalienceResult) -> dict:
    """Format 1, exactly as ``SalienceResult.to_json`` wrote it before ``format_version``."""
    return {
        "text": result.text,
        "prompt_length": result.prompt_length,
        "tokens": list(result.tokens),
        "offsets": [list(span) for span in result.offsets],
        "target_token_span": list(result.target_token_span),
        "target_text": result.target_text,
        "target_log_prob": result.target_log_prob,
        "seconds": round(result.seconds, 4),
        "diagnostics": result.diagnostics,
        **{name: [float(v) for v in values] for name, values in result.scores.items()},
    }


def assert_same(a: SalienceResult, b: SalienceResult) -> None:
    assert (a.text, a.prompt_length, a.tokens, a.offsets) == (b.text, b.prompt_length, b.tokens, b.offsets)
    assert (a.target_token_span, a.target_log_prob, a.seconds) == (
        b.target_token_span,
        b.target_log_prob,
        b.seconds,
    )
    assert list(a.scores) == list(b.scores)
    for name in a.scores:
        np.testing.assert_array_equal(a.scores[name], b.scores[name])
        assert a.scores[name].dtype == np.float32
    assert a.diagnostics == b.diagnostics


def test_every_method_round_trips_through_json_text():
    original = every_method_result()
    assert set(original.scores) == set(REGISTRY)
    data = json.loads(json.dumps(original.to_json()))
    assert data["format_version"] == RESULT_FORMAT_VERSION == 2
    assert set(data["scores"]) == set(REGISTRY)
    assert not set(REGISTRY) & set(data)  # no method's scores at the top level
    again = SalienceResult.from_json(data)
    assert_same(again, original)
    assert again.provenance == original.provenance
    assert again.diagnostics["occlusion"]["segments"] == [[1, 6], [6, 9], [9, 12]]
    assert again.diagnostics["integrated_gradients"]["completeness_gap"] == 0.25
    np.testing.assert_allclose(again.summable("occlusion"), original.summable("occlusion"))
    assert again.target_text == TARGET
    assert again.to_json() == data  # and back again, unchanged


def test_each_method_alone_round_trips():
    full = every_method_result()
    for name in REGISTRY:
        alone = SalienceResult(
            full.text,
            full.prompt_length,
            full.tokens,
            full.offsets,
            full.target_token_span,
            {name: full.scores[name]},
            diagnostics={k: v for k, v in full.diagnostics.items() if k == name},
            provenance=Provenance("m", "float32", {name: full.provenance.parameters[name]}),
        )
        again = SalienceResult.from_json(json.loads(json.dumps(alone.to_json())))
        assert_same(again, alone)
        assert again.provenance == alone.provenance


OLD_JSON = (
    '{"text": "Q: hi\\nA: hello", "prompt_length": 8, "tokens": ["<bos>", "Q:", " hi\\nA:", " hello"], '
    '"offsets": [[0, 0], [0, 2], [2, 8], [8, 14]], "target_token_span": [3, 4], "target_text": " hello", '
    '"target_log_prob": -1.5, "seconds": 0.2, "diagnostics": {"integrated_gradients": {"baseline": "zero", '
    '"steps": 16, "completeness_gap": 0.01}}, "grad_l2": [0.5, 0.25, 0.125, 0.0], '
    '"integrated_gradients": [0.0, -0.5, 1.0, 0.0]}'
)


def test_a_format_1_json_string_still_loads():
    result = SalienceResult.from_json(json.loads(OLD_JSON))
    assert list(result.scores) == ["grad_l2", "integrated_gradients"]
    np.testing.assert_array_equal(result.scores["grad_l2"], np.float32([0.5, 0.25, 0.125, 0.0]))
    np.testing.assert_array_equal(result.scores["integrated_gradients"], np.float32([0, -0.5, 1, 0]))
    assert result.tokens == ("<bos>", "Q:", " hi\nA:", " hello") and result.target_text == " hello"
    assert (result.target_token_span, result.target_log_prob, result.seconds) == ((3, 4), -1.5, 0.2)
    assert result.diagnostics["integrated_gradients"]["completeness_gap"] == 0.01
    # Unknown provenance, except the parameters format 1 kept in the diagnostics.
    assert result.provenance == Provenance(
        "", "", {"integrated_gradients": {"baseline": "zero", "steps": 16}}
    )
    assert result.to_json()["format_version"] == 2


def test_format_1_of_every_method_loads_as_written():
    original = every_method_result()
    old = json.loads(json.dumps(old_to_json(original)))
    again = SalienceResult.from_json(old)
    assert_same(again, original)
    assert again.provenance.parameters == {"integrated_gradients": {"baseline": "pad", "steps": 16}}


def test_unknown_or_broken_formats_are_refused():
    data = every_method_result().to_json()
    with pytest.raises(ValueError, match="format_version 3"):
        SalienceResult.from_json({**data, "format_version": 3})
    with pytest.raises(KeyError):
        SalienceResult.from_json({k: v for k, v in data.items() if k != "scores"})
    with pytest.raises(TypeError):
        SalienceResult.from_json({**data, "scores": [1.0, 2.0]})
    with pytest.raises(TypeError):
        SalienceResult.from_json("[]")
    with pytest.raises(ValueError, match="parameters"):
        SalienceResult.from_json({**data, "provenance": {"parameters": {"grad_l2": 3}}})


def test_provenance_merges_and_records_parameters():
    gradients = SalienceResult(
        "ab", 1, ("a", "b"), ((0, 1), (1, 2)), (1, 2), provenance=Provenance("m", "bfloat16", {"grad_l2": {}})
    )
    deletion = Provenance("m", "bfloat16", {"occlusion": {}})
    both = gradients.provenance.merged(deletion)
    assert both == Provenance("m", "bfloat16", {"grad_l2": {}, "occlusion": {}})
    marked = gradients.with_parameters("occlusion", granularity="lines", pattern=None)
    assert marked.provenance.parameters["occlusion"] == {"granularity": "lines", "pattern": None}
    assert gradients.provenance.parameters == {"grad_l2": {}}  # frozen: the original is unchanged
    assert Provenance().filled("gguf:x", "float32") == Provenance("gguf:x", "float32")
    assert Provenance("a", "b").filled("gguf:x", "float32") == Provenance("a", "b")


def test_provenance_reads_as_one_line():
    provenance = every_method_result().provenance
    assert provenance.describe(str.upper) == (
        "embedded at bfloat16 · INTEGRATED_GRADIENTS: baseline pad, 16 steps · OCCLUSION: sentences"
    )
    assert Provenance().describe() == "model not recorded"
    regex = Provenance("m", "", {"occlusion": {"granularity": "regex", "pattern": "^#"}})
    assert regex.describe() == "m · occlusion: regex, pattern ^#"
