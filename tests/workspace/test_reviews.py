"""Blind reviews in the workspace: made from an evaluation (a snapshot of its outputs), verdicts
committed one per reviewer and item, sides recorded, and the bad inputs of issue 24."""

from __future__ import annotations

import json
import threading

import pytest
import sqlalchemy as sa

from salience.core.errors import InputError
from salience.evaluation.review_stats import choice_for, summarize_review
from salience.evaluation.runs import Check, parse_data, plan_evaluation, score
from salience.prompts.variant import Variant
from workspace.__main__ import main as workspace_cli
from workspace.evaluations import create_evaluation, delete_evaluation, load_evaluation, record_cell
from workspace.reviews import (
    create_review,
    delete_review,
    find_review,
    give_verdict,
    items_from_evaluation,
    load_review,
    reviews,
)
from workspace.store import Workspace

ROWS = "likes,item\nCheese,Quiche\nSweets,Cake\nFish,Salmon\n"


@pytest.fixture
def workspace(database_url):
    opened = Workspace.open(database_url)
    yield opened
    opened.close()


def _evaluation(workspace: Workspace) -> int:
    variants = [Variant("mistake", "L {likes} I {item}"), Variant("fixed", "I {item} L {likes}")]
    plan = plan_evaluation(variants, parse_data(ROWS), [Check("contains", "Avoid")])
    evaluation_id = create_evaluation(workspace, "menu", plan)
    for row in range(3):
        for variant in range(2):
            output = f" Avoid {row}" if (row + variant) % 2 else f" <b>Enjoy</b> {row}\x00"
            record_cell(workspace, evaluation_id, score(plan, row, variant, output))
    return evaluation_id


def _review(workspace: Workspace, per_item: int = 2) -> tuple[int, str]:
    evaluation_id = _evaluation(workspace)
    stored = load_evaluation(workspace, evaluation_id)
    items = items_from_evaluation(stored, 0, 1)
    variants = tuple({"name": v.name, "template": v.template} for v in stored.plan.variants[:2])
    return create_review(
        workspace,
        "Which reply?",
        variants,
        items,
        "Which would you send?",
        True,
        per_item,
        evaluation_id,
        seed=1,
    )


def test_a_review_keeps_the_outputs_it_shows(workspace):
    review_id, uid = _review(workspace)
    assert find_review(workspace, uid.upper()) == review_id
    stored = load_review(workspace, review_id)
    assert stored.names == ("mistake", "fixed") and stored.evaluation_exists
    assert len(stored.items) == 3 and sorted(i.row for i in stored.items) == [0, 1, 2]
    item = next(i for i in stored.items if i.row == 0)
    assert item.inputs == {"likes": "Cheese", "item": "Quiche"}
    assert item.outputs == (" <b>Enjoy</b> 0\x00", " Avoid 0") and item.passed == (False, True)
    assert item.values[0] == {"likes": "Cheese", "item": "Quiche"}
    delete_evaluation(workspace, stored.evaluation_id)  # the evaluation goes; the review stays whole
    again = load_review(workspace, review_id)
    assert not again.evaluation_exists and again.items == stored.items
    (row,) = reviews(workspace)
    assert (row.items, row.verdicts, row.variants) == (3, 0, ("mistake", "fixed"))


def test_verdicts_one_per_reviewer_and_item_sides_recorded(workspace):
    review_id, _ = _review(workspace)
    stored = load_review(workspace, review_id)
    first = stored.items[0]
    left = stored.left(first.id, "Ana")
    assert give_verdict(workspace, review_id, first.id, "Ana", choice_for("A", left), left) == "added"
    # back to change the answer, from another tab with the name spelled differently
    assert (
        give_verdict(workspace, review_id, first.id, " ana ", "neither", 1 - left, "both rude") == "changed"
    )
    give_verdict(workspace, review_id, first.id, "Ben", "same", stored.left(first.id, "Ben"))
    stored = load_review(workspace, review_id)
    assert len(stored.verdicts) == 2
    mine = stored.mine("ANA")[first.id]
    assert (mine.choice, mine.left, mine.reason) == ("neither", left, "both rude")  # the side stays
    assert stored.left(first.id, "Ana") == left
    summary = summarize_review(stored.names, stored.items, stored.verdicts)
    assert summary.verdicts == 2 and summary.disagreements == [first.id]
    (row,) = reviews(workspace)
    assert (row.verdicts, row.reviewers) == (2, 2)


def test_queue_skips_items_that_have_enough_reviewers(workspace):
    review_id, _ = _review(workspace, per_item=1)
    stored = load_review(workspace, review_id)
    give_verdict(workspace, review_id, stored.items[0].id, "Ana", "first", 0)
    stored = load_review(workspace, review_id)
    assert [i.id for i in stored.queue("Ana")] == [i.id for i in stored.items]
    assert [i.id for i in stored.queue("Ben")] == [i.id for i in stored.items[1:]]


def test_two_tabs_at_once_count_once(workspace):
    review_id, _ = _review(workspace)
    item = load_review(workspace, review_id).items[1]
    results = []

    def answer(choice: str) -> None:
        results.append(give_verdict(workspace, review_id, item.id, "Ana", choice, 0))

    threads = [threading.Thread(target=answer, args=(c,)) for c in ("first", "second", "same", "first")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results).count("added") == 1 and len(results) == 4
    assert len(load_review(workspace, review_id).verdicts) == 1


def test_bad_input(workspace):
    review_id, uid = _review(workspace)
    item = load_review(workspace, review_id).items[0]
    with pytest.raises(InputError, match="reviewer name is empty"):
        give_verdict(workspace, review_id, item.id, "  ", "first", 0)
    with pytest.raises(InputError, match="at most 2,000"):
        give_verdict(workspace, review_id, item.id, "Ana", "first", 0, "x" * 50_000)
    with pytest.raises(InputError, match="not one of the four"):
        give_verdict(workspace, review_id, item.id, "Ana", "best", 0)
    with pytest.raises(InputError, match="does not lead to a review"):
        find_review(workspace, "0" * 32)
    with pytest.raises(InputError, match="does not lead to a review"):
        find_review(workspace, "x" * 5000)
    with pytest.raises(InputError, match="Nothing to review"):
        create_review(workspace, "empty", ({"name": "a"}, {"name": "b"}), [])
    html = "<script>alert(1)</script> **bold** " + "é" * 1000
    give_verdict(workspace, review_id, item.id, "Ana", "first", 0, html)
    assert load_review(workspace, review_id).verdicts[0].reason == html
    delete_review(workspace, review_id)
    assert reviews(workspace) == []
    with pytest.raises(InputError, match="does not lead to a review"):
        find_review(workspace, uid)
    with pytest.raises(InputError, match="no longer part of the review"):
        give_verdict(workspace, review_id, item.id, "Ana", "first", 0)


def test_export_and_import_restore_reviews_and_verdicts(workspace, tmp_path, monkeypatch):
    review_id, uid = _review(workspace)
    stored = load_review(workspace, review_id)
    for n, item in enumerate(stored.items):
        give_verdict(
            workspace, review_id, item.id, "Ana", "first", stored.left(item.id, "Ana"), f"<i>{n}</i>"
        )
        give_verdict(workspace, review_id, item.id, "Ben", "same", stored.left(item.id, "Ben"))
    stored = load_review(workspace, review_id)
    exported = workspace.export_jsonl()
    kinds = [json.loads(line)["kind"] for line in exported.splitlines()]
    assert kinds.count("review") == 1 and kinds.count("verdict") == 6
    again = workspace.import_jsonl(exported)  # a workspace's own export adds nothing
    assert again.added["review"] == again.added["verdict"] == 0 and again.present["verdict"] == 6
    delete_review(workspace, review_id)
    path = tmp_path / "export.jsonl"
    path.write_text(exported, encoding="utf-8")
    monkeypatch.setenv(
        "DATABASE_URL", workspace.url if "postgresql" in workspace.url else str(workspace.engine.url)
    )
    assert workspace_cli(["import", str(path)]) == 0
    restored = load_review(workspace, find_review(workspace, uid))
    assert restored.names == stored.names and [i.outputs for i in restored.items] == [
        i.outputs for i in stored.items
    ]
    assert [i.position for i in restored.items] == [i.position for i in stored.items]
    by_position = {i.id: i.position for i in restored.items}
    before = {i.id: i.position for i in stored.items}
    assert sorted(
        (by_position[v.item], v.reviewer, v.choice, v.left, v.reason) for v in restored.verdicts
    ) == sorted((before[v.item], v.reviewer, v.choice, v.left, v.reason) for v in stored.verdicts)


def test_import_refuses_a_verdict_without_its_review(workspace):
    line = {
        "kind": "verdict",
        "id": 1,
        "review_id": 9,
        "item": 0,
        "reviewer": "Ana",
        "choice": "first",
        "left": 0,
    }
    with pytest.raises(InputError, match="review_id"):
        workspace.import_jsonl(json.dumps(line) + "\n")
    with pytest.raises(InputError, match="choice"):
        workspace.import_jsonl(json.dumps({**line, "choice": "best"}) + "\n")


def test_the_migration_goes_down_and_up_again(database_url):
    from alembic import command
    from old_rows import migrate

    opened = Workspace.open(database_url)
    _review(opened)
    migrate(opened.engine, command.downgrade, "0005")
    assert not {"reviews", "review_items", "verdicts"} & set(sa.inspect(opened.engine).get_table_names())
    migrate(opened.engine, command.upgrade, "head")
    assert reviews(opened) == []
    _review(opened)
    assert len(reviews(opened)) == 1
    opened.close()
