"""Faithfulness floors on the embedded model (the first cases of bench/bench_faithfulness.py's suite).

The floors are what the benchmark measured on these cases minus a margin of two cases (see
docs/FAITHFULNESS.md); a change that makes a method less faithful than that fails here.
"""

import numpy as np
import pytest

from salience.attribution.faithfulness import copy_case_scores, make_cases, summarize
from salience.attribution.occlusion import deletable_segments, deletion_scores
from salience.prompts.samples import find_sample
from salience.prompts.segments import make_segments

CASES = 12
MARGIN = 2 / CASES
# Measured on the first 12 cases (float32), docs/FAITHFULNESS.md.
MEASURED_TOP1 = {"grad_l2": 0.58, "occlusion": 1.0}
MEASURED_SPEARMAN = {"grad_l2": 0.52}


@pytest.fixture(scope="module")
def scored(real_model):
    return [
        copy_case_scores(real_model, case, ("grad_l2", "grad_dot_input"))
        for case in make_cases(CASES, seed=0)
    ]


def test_deletion_finds_the_fact_the_answer_copies(scored):
    summary = summarize(scored, "occlusion")
    assert summary.top1_truth >= MEASURED_TOP1["occlusion"] - MARGIN
    assert summary.comprehensiveness > summary.random_drop + 1.0


def test_grad_l2_agrees_with_deletion_at_least_as_well_as_measured(scored):
    summary = summarize(scored, "grad_l2")
    assert summary.top1_truth >= MEASURED_TOP1["grad_l2"] - MARGIN
    assert summary.spearman >= MEASURED_SPEARMAN["grad_l2"] - 0.15


def test_grad_dot_input_sign_is_not_a_direction(scored):
    """What the page's words rest on: Grad·Input's most positive sentence is not reliably the fact
    used (its description says so), so its legend may not say 'toward / away'."""
    summary = summarize(scored, "grad_dot_input")
    assert summary.top1_truth < summarize(scored, "occlusion").top1_truth


def test_shared_prefix_equals_deleting_for_real(real_model):
    prompt = find_sample("fewshot-mistake").render().text
    target = " it has cheese in it, which you don't like.\nRecommendation: You have to try it."
    tokens, first = real_model.tokenize_pair(prompt, target)
    segments = make_segments(prompt + target, tokens.offsets, "sentences", prompt_length=len(prompt))
    spans = deletable_segments([(s.token_start, s.token_end) for s in segments], first)[:6]
    forward = real_model.forward_for("float32")
    fast = deletion_scores(forward, tokens.ids, first, len(tokens), spans)
    full = deletion_scores(forward, tokens.ids, first, len(tokens), spans, share_prefix=False)
    np.testing.assert_allclose(fast.scores, full.scores, atol=2e-3)
    assert fast.log_prob == pytest.approx(full.log_prob, abs=1e-3)
