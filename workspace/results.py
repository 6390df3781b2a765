"""The stored result format: a saved explanation read back (any format version) and checked.

Shared by the store (`workspace.store`, which writes and reads salience rows) and the import
records (`workspace.records`, which check an imported row before the store sees it).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from salience.attribution.methods import REGISTRY
from salience.core.types import SalienceResult


def result_from_json(data: dict, model: str = "", precision: str = "") -> SalienceResult:
    """A stored ``SalienceResult.to_json()`` of any format version; the row's model and precision
    fill the provenance of results saved before it was recorded."""
    result = SalienceResult.from_json(data)
    return dataclasses.replace(result, provenance=result.provenance.filled(model, precision))


def result_json(result: SalienceResult, model: str, precision: str) -> dict:
    """What a salience row stores: the current format, its provenance filled from the row."""
    return dataclasses.replace(result, provenance=result.provenance.filled(model, precision)).to_json()


def check_result(data: dict) -> SalienceResult:
    """A stored explanation that the pages can draw; ValueError saying what is wrong."""
    try:
        result = result_from_json(data)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as error:
        raise ValueError(f"should be a saved explanation (bad or missing {error})") from None
    count, length = len(result.tokens), len(result.text)
    if not all(isinstance(token, str) for token in result.tokens):
        raise ValueError("should have text tokens")
    if len(result.offsets) != count or not all(0 <= a <= b <= length for a, b in result.offsets):
        raise ValueError("should have one [start, end] offset inside the text per token")
    if not 0 <= result.prompt_length <= length:
        raise ValueError("should have a prompt_length inside the text")
    start, end = result.target_token_span
    if not 0 <= start < end <= count:
        raise ValueError("should have a target_token_span inside the tokens")
    if not result.scores:
        raise ValueError("should hold the scores of at least one method")
    for name, scores in result.scores.items():
        if name not in REGISTRY:
            raise ValueError(f"has scores of an unknown method ({', '.join(REGISTRY)} are known)")
        if scores.shape != (count,) or not np.isfinite(scores).all():
            raise ValueError("should have one finite score per token for each method")
    return result
