"""Evaluations in the workspace: each finished (row, variant) is committed as it completes, so a
refresh, a crash or a restart resumes without recomputing finished rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from salience.core.errors import InputError
from salience.evaluation.runs import CellResult, Plan, plan_from_json, plan_to_json
from workspace.owners import Author, Person, check_may_change
from workspace.schema import Evaluation, EvaluationCell, now
from workspace.store import Workspace

STATUSES = ("running", "cancelled", "finished")


@dataclass(frozen=True)
class EvaluationRow:
    """A line of the History list."""

    id: int
    name: str
    status: str
    total: int
    done: int
    variants: tuple[str, ...]
    created_at: datetime
    author: Author = Author()


@dataclass(frozen=True)
class StoredEvaluation:
    id: int
    name: str
    status: str
    plan: Plan
    options: dict
    cells: tuple[CellResult, ...]
    created_at: datetime

    @property
    def done(self) -> set[tuple[int, int]]:
        return {(cell.row, cell.variant) for cell in self.cells}

    @property
    def finished(self) -> bool:
        return len(self.done) >= self.plan.size


def create_evaluation(
    workspace: Workspace,
    name: str,
    plan: Plan,
    options: dict | None = None,
    browser_id: str | None = None,
    by: Author | None = None,
) -> int:
    """Store a new evaluation, status "running".

    Args:
        workspace: the open `Workspace`.
        name: its name ("" : "Evaluation"; kept whole, however long).
        plan: the validated `Plan` (`salience.evaluation.runs.plan_evaluation`).
        options: the run's options (batch size, precision, …) to resume it with.
        browser_id: the browser that started it.
        by: who started it.

    Returns:
        The new evaluation's id (`record_cell` adds its cells as they finish).

    Example:
    >>> evaluation_id = create_evaluation(workspace, "Menu A/B", plan, {"batch_size": 8})  # doctest: +SKIP
    """
    name = (name or "").strip() or "Evaluation"  # kept whole, however long
    with workspace._write() as session, session.begin():
        evaluation = Evaluation(
            name=name,
            plan=json.dumps(plan_to_json(plan), ensure_ascii=False),
            options=dict(options or {}),
            status="running",
            total=plan.size,
            browser_id=browser_id,
            **(by or Author()).columns(),
        )
        session.add(evaluation)
        session.flush()
        return evaluation.id


def record_cell(workspace: Workspace, evaluation_id: int, cell: CellResult) -> bool:
    """Commit one finished cell now.

    Args:
        workspace: the open `Workspace`.
        evaluation_id: the evaluation it belongs to (`InputError` once it is deleted).
        cell: the finished `CellResult`.

    Returns:
        True, or False when that (row, variant) was already stored (a resumed duplicate).

    Example:
    >>> for cell in run_evaluation(plan, model, settings):  # doctest: +SKIP
    ...     record_cell(workspace, evaluation_id, cell)
    """
    try:
        with workspace._write() as session, session.begin():
            session.add(
                EvaluationCell(
                    evaluation_id=evaluation_id, row=cell.row, variant=cell.variant, result=cell.to_json()
                )
            )
            evaluation = session.get(Evaluation, evaluation_id)
            if evaluation is None:
                raise InputError(f"Evaluation {evaluation_id} no longer exists (deleted?).")
            evaluation.updated_at = now()
        return True
    except IntegrityError:
        return False


def set_status(workspace: Workspace, evaluation_id: int, status: str) -> None:
    """Set an evaluation's status (nothing happens when it no longer exists).

    Args:
        workspace: the open `Workspace`.
        evaluation_id: the evaluation's id.
        status: one of `STATUSES` ("running", "cancelled", "finished"); any other is an `InputError`.

    Example:
    >>> set_status(workspace, evaluation_id, "finished")  # doctest: +SKIP
    """
    if status not in STATUSES:
        raise InputError(f"Unknown evaluation status '{status}'.")
    with workspace._write() as session, session.begin():
        evaluation = session.get(Evaluation, evaluation_id)
        if evaluation is not None:
            evaluation.status = status
            evaluation.updated_at = now()


def load_evaluation(workspace: Workspace, evaluation_id: int) -> StoredEvaluation:
    """An evaluation with its plan and every cell stored so far.

    Args:
        workspace: the open `Workspace`.
        evaluation_id: the evaluation's id.

    Returns:
        A `StoredEvaluation` (its ``done`` cells are what a resumed run skips); `InputError` when
        there is no such evaluation or its plan no longer validates.

    Example:
    >>> stored = load_evaluation(workspace, evaluation_id)  # doctest: +SKIP
    >>> rest = run_evaluation(stored.plan, model, settings, done=stored.done)  # doctest: +SKIP
    """
    with workspace._read() as session:
        evaluation = session.get(Evaluation, evaluation_id)
        if evaluation is None:
            raise InputError(f"There is no evaluation {evaluation_id}; it may have been deleted.")
        results = session.scalars(
            select(EvaluationCell.result)
            .where(EvaluationCell.evaluation_id == evaluation_id)
            .order_by(EvaluationCell.id)
        )
        cells = tuple(CellResult.from_json(result) for result in results)
        try:
            plan = plan_from_json(json.loads(evaluation.plan))
        except ValueError as error:
            raise InputError(f"Evaluation {evaluation_id} is damaged ({error}).") from None
        return StoredEvaluation(
            evaluation.id,
            evaluation.name,
            evaluation.status,
            plan,
            dict(evaluation.options or {}),
            cells,
            evaluation.created_at,
        )


def evaluations(workspace: Workspace, search: str = "", limit: int = 200) -> list[EvaluationRow]:
    """The evaluations, newest first, for the History list.

    Args:
        workspace: the open `Workspace`.
        search: matches the name or a variant's name or template ("": all).
        limit: the most listed.

    Returns:
        One `EvaluationRow` per evaluation, with how many of its cells are done.

    Example:
    >>> [row.name for row in evaluations(workspace, search="menu")]  # doctest: +SKIP
    ['Menu A/B']
    """
    done = (
        select(EvaluationCell.evaluation_id, func.count().label("done"))
        .group_by(EvaluationCell.evaluation_id)
        .subquery()
    )
    query = (
        select(Evaluation, func.coalesce(done.c.done, 0))
        .outerjoin(done, done.c.evaluation_id == Evaluation.id)
        .order_by(Evaluation.created_at.desc(), Evaluation.id.desc())
        .limit(limit)
    )
    term = search.strip()
    if term:
        query = query.where(
            or_(
                Evaluation.name.icontains(term, autoescape=True),
                Evaluation.plan.icontains(term, autoescape=True),
            )
        )
    rows = []
    with workspace._read() as session:
        for evaluation, count in session.execute(query):
            try:
                names = tuple(v["name"] for v in json.loads(evaluation.plan)["variants"])
            except (ValueError, KeyError, TypeError):
                names = ()
            rows.append(
                EvaluationRow(
                    evaluation.id,
                    evaluation.name,
                    evaluation.status,
                    evaluation.total,
                    int(count),
                    names,
                    evaluation.created_at,
                    Author(evaluation.author, evaluation.author_sub, evaluation.author_email),
                )
            )
    return rows


def delete_evaluation(workspace: Workspace, evaluation_id: int, person: Person | None = None) -> None:
    """Delete an evaluation and its cells (nothing happens when it no longer exists).

    Allowed to its author and to admins (``person`` None: personal mode, anyone).

    Args:
        workspace: the open `Workspace`.
        evaluation_id: the evaluation's id.
        person: who asks (`workspace.owners.Person`).

    Raises:
        InputError: ``person`` may not delete it (the message says why).

    Example:
    >>> delete_evaluation(workspace, evaluation_id)  # doctest: +SKIP
    """
    with workspace._write() as session, session.begin():
        evaluation = session.get(Evaluation, evaluation_id)
        if evaluation is None:
            return
        check_may_change(
            person, "evaluation", evaluation.author_sub, evaluation.author, evaluation.author_email
        )
        session.execute(delete(EvaluationCell).where(EvaluationCell.evaluation_id == evaluation_id))
        session.execute(delete(Evaluation).where(Evaluation.id == evaluation_id))
