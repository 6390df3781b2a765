"""The page's first colours (the Deletion estimate, bfloat16 as on the page) against the float32
Deletion oracle on the embedded model: the first copy-from-context cases and realistic prompts of
bench/bench_faithfulness.py. The floors are what the benchmark measured (docs/FAITHFULNESS.md)
minus a margin of two cases; a change that makes the default colours less faithful fails here."""

import numpy as np
import pytest

from salience.attribution.faithfulness import (
    CaseScores,
    copy_case_scores,
    make_cases,
    score_segments,
    summarize,
)
from salience.attribution.methods import DEFAULT_METHOD, DELETION
from salience.prompts.realistic import make_realistic_cases

COPY_CASES = 12
REALISTIC_CASES = 12
# Measured by the benchmark over 60 copy cases and 36 realistic prompts (sentences), bfloat16.
MEASURED_TOP1 = {"copy": 0.98, "realistic": 1.0}
MEASURED_SPEARMAN = {"copy": 0.76, "realistic": 0.84}


@pytest.fixture(scope="module")
def copy_scored(real_model):
    # Ranked over the fact sentences, as the benchmark ranks them.
    return [
        copy_case_scores(real_model, case, (DEFAULT_METHOD,), precision="bfloat16")
        for case in make_cases(COPY_CASES, seed=0)
    ]


@pytest.fixture(scope="module")
def realistic_scored(real_model):
    results = []
    for case in make_realistic_cases(REALISTIC_CASES):
        rendered = case.variant.render()
        segments, scores, _ = score_segments(
            real_model, rendered.text, case.target, (DEFAULT_METHOD,), precision="bfloat16"
        )
        _, oracle, _ = score_segments(
            real_model, rendered.text, case.target, (DELETION,), precision="float32"
        )
        results.append(
            CaseScores(case.variant.name, [(s.start, s.end) for s in segments], scores, oracle[DELETION])
        )
    return results


@pytest.mark.parametrize("suite", ["copy", "realistic"])
def test_the_first_colours_put_deletions_top_part_first(suite, copy_scored, realistic_scored):
    scored = copy_scored if suite == "copy" else realistic_scored
    summary = summarize(scored, DEFAULT_METHOD)
    assert summary.top1_oracle >= MEASURED_TOP1[suite] - 2 / len(scored), summary
    assert summary.spearman >= MEASURED_SPEARMAN[suite] - 0.15, summary


def test_the_first_colours_are_in_nats_where_checked(copy_scored):
    """The checked segments carry Deletion's own numbers: the top part's score is within rounding
    (bfloat16 against float32) of what deleting it does."""
    for case in copy_scored:
        values = case.scores[DEFAULT_METHOD]
        top = int(np.argmax(values))
        if top == int(np.argmax(case.oracle)):
            assert values[top] == pytest.approx(case.oracle[top], abs=0.75 + 0.1 * abs(case.oracle[top]))
