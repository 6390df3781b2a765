"""Blind reviews in the workspace: a review keeps the outputs it shows (a snapshot of its
evaluation), and every verdict is committed as it is given, one per reviewer and item (a
changed answer replaces the earlier one; two tabs of one reviewer never count twice)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from salience.core.errors import InputError
from salience.evaluation import review_stats as rv
from workspace.evaluations import StoredEvaluation
from workspace.owners import Author, Person, check_may_change
from workspace.schema import Evaluation, Review, ReviewItem, Verdict, now
from workspace.store import MAX_NAME, Workspace, clean_name

MAX_ITEMS = 2_000
MAX_PER_ITEM = 20
MAX_INSTRUCTIONS = 2_000


@dataclass(frozen=True)
class ItemDraft:
    """An item before it is stored: inputs, each variant's values and output, their checks."""

    inputs: dict[str, str]
    outputs: tuple[str, str]
    values: tuple[dict[str, str], dict[str, str]] = ({}, {})
    passed: tuple[bool | None, bool | None] = (None, None)
    row: int | None = None


@dataclass(frozen=True)
class StoredReview:
    id: int
    uid: str
    name: str
    instructions: str
    ask_reason: bool
    per_item: int
    evaluation_id: int | None
    evaluation_exists: bool
    variants: tuple[dict, dict]  # {"name", "template"}
    options: dict
    items: tuple[rv.ReviewItem, ...]
    verdicts: tuple[rv.Verdict, ...]
    created_at: datetime

    @property
    def names(self) -> tuple[str, str]:
        return (str(self.variants[0]["name"]), str(self.variants[1]["name"]))

    def mine(self, reviewer: str) -> dict[int, rv.Verdict]:
        """This reviewer's verdicts by item id."""
        key = rv.reviewer_key(reviewer)
        return {v.item: v for v in self.verdicts if rv.reviewer_key(v.reviewer) == key}

    def queue(self, reviewer: str) -> list[rv.ReviewItem]:
        """The items this reviewer is asked to judge, in order: those they judged, and those that
        still need reviewers (fewer than ``per_item`` others have judged them)."""
        key = rv.reviewer_key(reviewer)
        mine = self.mine(reviewer)
        others: dict[int, int] = {}
        for verdict in self.verdicts:
            if rv.reviewer_key(verdict.reviewer) != key:
                others[verdict.item] = others.get(verdict.item, 0) + 1
        return [i for i in self.items if i.id in mine or others.get(i.id, 0) < self.per_item]

    def left(self, item_id: int, reviewer: str) -> int:
        """The side a reviewer sees the first variant on: as recorded, else as drawn for them."""
        given = self.mine(reviewer).get(item_id)
        if given is not None:
            return given.left
        return rv.balanced_sides(self.uid, [item.id for item in self.items], reviewer)[item_id]


@dataclass(frozen=True)
class ReviewRow:
    """A line of the History list."""

    id: int
    uid: str
    name: str
    items: int
    verdicts: int
    reviewers: int
    variants: tuple[str, ...]
    created_at: datetime
    author: Author = Author()


def items_from_evaluation(
    stored: StoredEvaluation, first: int, second: int, rows: Sequence[int] | None = None
) -> list[ItemDraft]:
    """One review item per chosen row (all by default) where both variants have an output.

    Args:
        stored: the evaluation (`workspace.evaluations.load_evaluation`).
        first, second: the two variants compared (indexes into its plan; they must differ).
        rows: the rows to review (None: every row).

    Returns:
        One `ItemDraft` per row with an output (no error) from both variants, in row order.

    Example:
    >>> drafts = items_from_evaluation(load_evaluation(workspace, evaluation_id), 0, 1)  # doctest: +SKIP
    """
    plan = stored.plan
    count = len(plan.variants)
    if not (0 <= first < count and 0 <= second < count) or first == second:
        raise InputError("Choose two different variants of the evaluation to compare.")
    cells = {(c.row, c.variant): c for c in stored.cells}
    wanted = range(len(plan.dataset.rows)) if rows is None else rows
    drafts = []
    for row in wanted:
        a, b = cells.get((row, first)), cells.get((row, second))
        if a is None or b is None or a.error or b.error:
            continue
        values = (plan.values(row, first), plan.values(row, second))
        columns = set(plan.dataset.columns)  # the row's values, not a variant's own ones
        inputs = {k: v for k, v in {**values[0], **values[1]}.items() if k in columns}
        drafts.append(ItemDraft(inputs, (a.output, b.output), values, (a.passed, b.passed), row))
    return drafts


def create_review(
    workspace: Workspace,
    name: str,
    variants: tuple[dict, dict],
    items: Sequence[ItemDraft],
    instructions: str = "",
    ask_reason: bool = False,
    per_item: int = 2,
    evaluation_id: int | None = None,
    options: dict | None = None,
    seed: int | None = None,
    by: Author | None = None,
) -> tuple[int, str]:
    """Store a blind review and its items, shuffled (reviewers do not judge in the data's order).

    Args:
        workspace: the open `Workspace`.
        name: the review's name.
        variants: the two variants' ``{"name", "template"}`` (different names).
        items: the items (`items_from_evaluation`), 1 to `MAX_ITEMS`.
        instructions: shown to reviewers (at most `MAX_INSTRUCTIONS` characters).
        ask_reason: ask each reviewer for a reason.
        per_item: reviewers asked per item (1 to `MAX_PER_ITEM`).
        evaluation_id, options: the evaluation it came from and how it was made.
        seed: the shuffle's seed (None: random).
        by: who made it.

    Returns:
        Its id and its uid (the reviewers' link); `InputError` for any option out of range.

    Example:
    >>> review_id, uid = create_review(workspace, "Menu", (a, b), drafts, per_item=3)  # doctest: +SKIP
    """
    name = clean_name(name, "review name")
    _check_review(variants, items, instructions, per_item)
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    with workspace._write() as session, session.begin():
        review = Review(
            name=name,
            instructions=instructions.strip(),
            ask_reason=bool(ask_reason),
            per_item=per_item,
            evaluation_id=evaluation_id,
            variants=[{"name": str(v["name"]), "template": str(v.get("template", ""))} for v in variants],
            options=dict(options or {}),
            **(by or Author()).columns(),
        )
        session.add(review)
        session.flush()
        for position, index in enumerate(order):
            session.add(_item_row(review.id, position, items[index]))
        return review.id, review.uid


def _check_review(
    variants: tuple[dict, dict], items: Sequence[ItemDraft], instructions: str, per_item: int
) -> None:
    """A review's items, reviewers per item, instructions and variant names, checked before it is stored."""
    if not items:
        raise InputError(
            "Nothing to review: no row has an output from both variants yet. Run the evaluation first."
        )
    if len(items) > MAX_ITEMS:
        raise InputError(f"A review can have at most {MAX_ITEMS:,} items; choose fewer rows.")
    if not 1 <= per_item <= MAX_PER_ITEM:
        raise InputError(f"Ask 1 to {MAX_PER_ITEM} reviewers per item.")
    if len(instructions) > MAX_INSTRUCTIONS:
        raise InputError(f"The instructions can have at most {MAX_INSTRUCTIONS:,} characters.")
    if rv.reviewer_key(str(variants[0]["name"])) == rv.reviewer_key(str(variants[1]["name"])):
        raise InputError("The two variants need different names.")


def _item_row(review_id: int, position: int, item: ItemDraft) -> ReviewItem:
    """The database row of a review's item at ``position`` (its place in the shuffled order)."""
    return ReviewItem(
        review_id=review_id,
        position=position,
        row=item.row,
        inputs=dict(item.inputs),
        values=[dict(item.values[0]), dict(item.values[1])],
        output_first=item.outputs[0],
        output_second=item.outputs[1],
        passed=list(item.passed),
    )


def find_review(workspace: Workspace, key: str) -> int:
    """A review's id from its link's ``r`` (its uid).

    Args:
        workspace: the open `Workspace`.
        key: the uid as found in the link (case and spaces ignored).

    Returns:
        The review's id; `InputError` when there is no such review here.

    Example:
    >>> review_id = find_review(workspace, st.query_params["r"])  # doctest: +SKIP
    """
    key = (key or "").strip().lower()
    with workspace._read() as session:
        found = session.scalar(select(Review.id).where(Review.uid == key)) if len(key) <= 64 else None
    if found is None:
        raise InputError(
            "This review link does not lead to a review here; it may have been deleted. Ask for a new link."
        )
    return found


def load_review(workspace: Workspace, review_id: int) -> StoredReview:
    """A review with its items (in shuffled order) and every verdict.

    Args:
        workspace: the open `Workspace`.
        review_id: the review's id.

    Returns:
        A `StoredReview`; `InputError` when there is no such review.

    Example:
    >>> queue = load_review(workspace, review_id).queue("Ada")  # doctest: +SKIP
    """
    with workspace._read() as session:
        review = session.get(Review, review_id)
        if review is None:
            raise InputError(f"There is no review {review_id}; it may have been deleted.")
        items = tuple(
            rv.ReviewItem(
                item.id,
                item.position,
                {str(k): str(v) for k, v in (item.inputs or {}).items()},
                (item.output_first, item.output_second),
                tuple(item.passed or (None, None)),  # type: ignore[arg-type]
                item.row,
                tuple(item.values or ({}, {})),  # type: ignore[arg-type]
            )
            for item in session.scalars(
                select(ReviewItem).where(ReviewItem.review_id == review_id).order_by(ReviewItem.position)
            )
        )
        verdicts = tuple(
            rv.Verdict(v.item_id, v.reviewer, v.choice, v.left, v.reason)
            for v in session.scalars(
                select(Verdict).where(Verdict.review_id == review_id).order_by(Verdict.id)
            )
        )
        exists = (
            review.evaluation_id is not None and session.get(Evaluation, review.evaluation_id) is not None
        )
        variants = tuple(review.variants)
        return StoredReview(
            review.id,
            review.uid,
            review.name,
            review.instructions,
            review.ask_reason,
            review.per_item,
            review.evaluation_id,
            exists,
            (dict(variants[0]), dict(variants[1])),
            dict(review.options or {}),
            items,
            verdicts,
            review.created_at,
        )


def give_verdict(
    workspace: Workspace,
    review_id: int,
    item_id: int,
    reviewer: str,
    choice: str,
    left: int,
    reason: str = "",
    by: Author | None = None,
) -> str:
    """Commit a reviewer's verdict now.

    Args:
        workspace: the open `Workspace`.
        review_id, item_id: the item judged (`InputError` once it is deleted).
        reviewer: the reviewer's name (at most `MAX_NAME` characters).
        choice: one of the four answers (`salience.evaluation.review_stats.CHOICES`).
        left: the side (0 or 1) the first variant was shown on.
        reason: why (at most ``MAX_REASON`` characters).
        by: the signed-in reviewer.

    Returns:
        "added", or "changed" when it replaces their earlier verdict on this item (the side it was
        shown on stays as first recorded).

    Example:
    >>> give_verdict(workspace, review_id, item_id, "Ada", choice, left=0)  # doctest: +SKIP
    'added'
    """
    reviewer = clean_name(reviewer, "reviewer name", MAX_NAME)
    if choice not in rv.CHOICES or left not in (0, 1):
        raise InputError("That answer is not one of the four offered.")
    if len(reason) > rv.MAX_REASON:
        raise InputError(f"The reason has {len(reason):,} characters; it can have at most {rv.MAX_REASON:,}.")
    key = rv.reviewer_key(reviewer)
    fields = dict(
        review_id=review_id,
        item_id=item_id,
        reviewer=reviewer,
        reviewer_key=key,
        choice=choice,
        left=left,
        reason=reason,
        author_sub=by.sub if by else None,
        author_email=by.email if by else None,
    )
    for _attempt in range(3):  # a second tab of the same reviewer may insert in between
        try:
            return _store_verdict(workspace, fields)
        except IntegrityError:
            continue
    raise InputError("The answer could not be saved; try again.")


def _store_verdict(workspace: Workspace, fields: dict) -> str:
    """One try at committing a verdict (a new row each try): "added", or "changed" when the
    reviewer already judged the item (then only the choice and reason change)."""
    verdict = Verdict(**fields)
    with workspace._write() as session, session.begin():
        item = session.get(ReviewItem, verdict.item_id)
        if item is None or item.review_id != verdict.review_id:
            raise InputError("This item is no longer part of the review; it may have been deleted.")
        found = session.scalar(
            select(Verdict).where(
                Verdict.item_id == verdict.item_id, Verdict.reviewer_key == verdict.reviewer_key
            )
        )
        if found is not None:
            found.choice, found.reason, found.updated_at = verdict.choice, verdict.reason, now()
            return "changed"
        session.add(verdict)
    return "added"


def reviews(workspace: Workspace, limit: int = 200) -> list[ReviewRow]:
    """The reviews, newest first, for the History list.

    Args:
        workspace: the open `Workspace`.
        limit: the most listed.

    Returns:
        One `ReviewRow` per review, with its numbers of items, verdicts and reviewers.

    Example:
    >>> [row.name for row in reviews(workspace)]  # doctest: +SKIP
    ['Menu']
    """
    items = select(ReviewItem.review_id, func.count().label("n")).group_by(ReviewItem.review_id).subquery()
    given = (
        select(
            Verdict.review_id,
            func.count().label("n"),
            func.count(func.distinct(Verdict.reviewer_key)).label("people"),
        )
        .group_by(Verdict.review_id)
        .subquery()
    )
    query = (
        select(
            Review, func.coalesce(items.c.n, 0), func.coalesce(given.c.n, 0), func.coalesce(given.c.people, 0)
        )
        .outerjoin(items, items.c.review_id == Review.id)
        .outerjoin(given, given.c.review_id == Review.id)
        .order_by(Review.created_at.desc(), Review.id.desc())
        .limit(limit)
    )
    with workspace._read() as session:
        return [
            ReviewRow(
                review.id,
                review.uid,
                review.name,
                int(n_items),
                int(n_verdicts),
                int(people),
                tuple(str(v.get("name", "?")) for v in review.variants or ()),
                review.created_at,
                Author(review.author, review.author_sub, review.author_email),
            )
            for review, n_items, n_verdicts, people in session.execute(query)
        ]


def delete_review(workspace: Workspace, review_id: int, person: Person | None = None) -> None:
    """Delete a review with its items and verdicts (nothing happens when it no longer exists).

    Allowed to its author and to admins (``person`` None: personal mode, anyone).

    Args:
        workspace: the open `Workspace`.
        review_id: the review's id.
        person: who asks (`workspace.owners.Person`).

    Raises:
        InputError: ``person`` may not delete it (the message says why).

    Example:
    >>> delete_review(workspace, review_id)  # doctest: +SKIP
    """
    with workspace._write() as session, session.begin():
        review = session.get(Review, review_id)
        if review is None:
            return
        check_may_change(person, "review", review.author_sub, review.author, review.author_email)
        session.execute(delete(Verdict).where(Verdict.review_id == review_id))
        session.execute(delete(ReviewItem).where(ReviewItem.review_id == review_id))
        session.execute(delete(Review).where(Review.id == review_id))
