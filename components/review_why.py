"""“Why does it say that?” on the reviewer's page, once the answer is given (placeholder until the
explanation is wired to the workbench's click-to-explain component)."""

from __future__ import annotations

from salience.review import ReviewItem
from workspace.reviews import StoredReview


def explain(review: StoredReview, item: ReviewItem, left: int) -> None:
    """Nothing yet."""
