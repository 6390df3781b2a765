"""A result computed by a tiny model with every method (Deletion's segments, IG's diagnostics)
survives to_json -> JSON text -> from_json, and says how it was computed."""

from __future__ import annotations

import json

import numpy as np

from salience.attribution.methods import REGISTRY
from salience.core.types import SalienceResult
from salience.prompts.segments import make_segments

PROMPT = "Tom lives in Paris. Anna keeps a red bicycle.\nQuestion: where does Tom live?\nAnswer:"
TARGET = " Paris."


def test_every_method_computed_round_trips_with_its_provenance(tiny_gemma3_lm):
    lm = tiny_gemma3_lm
    tokens, _ = lm.tokenize_pair(PROMPT, TARGET)
    segments = make_segments(PROMPT + TARGET, tokens.offsets, "sentences", prompt_length=len(PROMPT))
    result = lm.salience(
        PROMPT,
        TARGET,
        methods=tuple(REGISTRY),
        integrated_steps=4,
        integrated_baseline="pad",
        segments=[(s.token_start, s.token_end) for s in segments],
    ).with_parameters("occlusion", granularity="sentences", pattern=None)

    provenance = result.provenance
    assert (provenance.model, provenance.precision) == ("test:tiny-gemma3", "float32")
    assert provenance.parameters["integrated_gradients"] == {"baseline": "pad", "steps": 4}
    assert provenance.parameters["occlusion"] == {"granularity": "sentences", "pattern": None}
    assert set(provenance.parameters) == set(REGISTRY)

    again = SalienceResult.from_json(json.loads(json.dumps(result.to_json())))
    assert list(again.scores) == list(REGISTRY)
    for name in REGISTRY:
        np.testing.assert_array_equal(again.scores[name], result.scores[name])
    assert again.diagnostics == json.loads(json.dumps(result.diagnostics))
    assert again.diagnostics["occlusion"]["segments"] == result.diagnostics["occlusion"]["segments"]
    assert "completeness_gap" in again.diagnostics["integrated_gradients"]
    assert again.provenance == result.provenance
    assert (again.tokens, again.offsets, again.target_token_span) == (
        result.tokens,
        result.offsets,
        result.target_token_span,
    )
    assert again.target_log_prob == result.target_log_prob and again.target_text == TARGET
