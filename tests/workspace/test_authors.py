"""Who made a record (issue 23, item 3) on SQLite and the real PostgreSQL: signed in, runs, notes,
evaluations, reviews and verdicts keep the author's user id (OIDC sub) and e-mail next to the
display name; only the author and admins may delete a record; without sign-in nothing changes;
export carries the authors and import keeps them; migration 0007 adds the columns to old rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from old_rows import migrate as _alembic

from salience.core.errors import InputError
from salience.core.types import Generation, GenerationSettings
from salience.evaluation.runs import Check, parse_data, plan_evaluation, score
from salience.prompts.variant import Variant
from workspace.database import MIGRATIONS
from workspace.evaluations import (
    create_evaluation,
    delete_evaluation,
    evaluations,
    load_evaluation,
    record_cell,
)
from workspace.owners import Author, may_change, read_only_reason
from workspace.reviews import create_review, delete_review, give_verdict, items_from_evaluation, load_review
from workspace.schema import UTCDateTime
from workspace.store import Workspace


@dataclass(frozen=True)
class Person:
    sub: str
    email: str
    name: str
    admin: bool = False


ALICE = Person("alice-001", "alice@example.org", "Alice Admin", admin=True)
BOB = Person("bob-002", "bob@example.org", "Bob")
CAROL = Person("carol-003", "carol@example.org", "Carol")
BOB_AGAIN = Person("bob-002", "bob@new-domain.example", "Robert")  # same sub, new e-mail and name
NO_SUB = Person("", "eve@example.org", "Eve")


def test_the_author_and_admins_may_change_a_record_others_may_not():
    assert may_change(BOB, "bob-002") and may_change(BOB_AGAIN, "bob-002")  # the sub, not the e-mail
    assert not may_change(CAROL, "bob-002")
    assert may_change(ALICE, "bob-002") and may_change(ALICE, None)
    assert not may_change(BOB, None)  # made in personal mode: an admin's to delete
    assert not may_change(NO_SUB, "") and not may_change(NO_SUB, None)  # an empty sub owns nothing
    assert may_change(None, "bob-002") and may_change(None, None)  # personal mode: as before


def test_the_read_only_reason_names_the_author_or_says_why():
    assert "(Bob) or an admin" in read_only_reason("run", "Bob", "bob@example.org")
    assert "(bob@example.org)" in read_only_reason("run", None, "bob@example.org")
    assert "only an admin" in read_only_reason("evaluation", None, None)


@pytest.fixture
def workspace(database_url):
    opened = Workspace.open(database_url)
    yield opened
    opened.close()


def _run(workspace: Workspace, by: Author | None = None) -> int:
    generation = Generation("Q: hi\nA:", " hello", (1, 2), "max_new_tokens", 0.5, 0.1)
    return workspace.record_run(
        generation, "embedded", "float32", GenerationSettings(max_new_tokens=8), by=by
    )


def _evaluation(workspace: Workspace, by: Author | None = None) -> int:
    variants = [Variant("a", "L {likes}"), Variant("b", "I {likes}")]
    plan = plan_evaluation(variants, parse_data("likes\nCheese\nCake\n"), [Check("contains", "Avoid")])
    evaluation_id = create_evaluation(workspace, "menu", plan, by=by)
    for row in range(2):
        for variant in range(2):
            record_cell(workspace, evaluation_id, score(plan, row, variant, f" Avoid {row}{variant}"))
    return evaluation_id


def _review(workspace: Workspace, by: Author | None = None) -> int:
    stored = load_evaluation(workspace, _evaluation(workspace, by))
    variants = tuple({"name": v.name, "template": v.template} for v in stored.plan.variants)
    review_id, _ = create_review(workspace, "Which?", variants, items_from_evaluation(stored, 0, 1), by=by)
    return review_id


def test_signed_in_records_keep_the_authors_id_and_email(workspace):
    bob = Author.of(BOB, "typed name")
    run_id = _run(workspace, bob)
    workspace.add_note("typed name", "ok", 1, run_id=run_id, by=bob)
    workspace.save_template_version("menu", "Q: {q}", {}, author="typed name", by=bob)
    evaluation_id = _evaluation(workspace, bob)

    assert workspace.run(run_id).author == Author("Bob", "bob-002", "bob@example.org")
    [note] = workspace.notes(run_id=run_id)
    assert note.reviewer == "Bob" and note.author == Author("Bob", "bob-002", "bob@example.org")
    assert workspace.versions("menu")[0].author == "Bob"
    [row] = [r for r in evaluations(workspace) if r.id == evaluation_id]
    assert row.author == Author("Bob", "bob-002", "bob@example.org")


def test_only_the_author_or_an_admin_may_delete(workspace):
    bob = Author.of(BOB)
    run_id, evaluation_id, review_id = (
        _run(workspace, bob),
        _evaluation(workspace, bob),
        _review(workspace, bob),
    )

    for delete, what in (
        (lambda p: workspace.delete_run(run_id, p), "run"),
        (lambda p: delete_evaluation(workspace, evaluation_id, p), "evaluation"),
        (lambda p: delete_review(workspace, review_id, p), "review"),
    ):
        with pytest.raises(InputError, match=rf"Only the person who made this {what} \(Bob\) or an admin"):
            delete(CAROL)
    assert (
        workspace.run(run_id)
        and load_evaluation(workspace, evaluation_id)
        and load_review(workspace, review_id)
    )

    workspace.delete_run(run_id, BOB_AGAIN)  # the author, known by the sub
    delete_evaluation(workspace, evaluation_id, ALICE)  # an admin
    delete_review(workspace, review_id, ALICE)
    with pytest.raises(InputError, match="no run"):
        workspace.run(run_id)
    assert evaluation_id not in {r.id for r in evaluations(workspace)}
    with pytest.raises(InputError):
        load_review(workspace, review_id)


def test_a_record_made_in_personal_mode_is_an_admins_to_delete(workspace):
    run_id, evaluation_id = _run(workspace), _evaluation(workspace)
    with pytest.raises(InputError, match="only an admin"):
        workspace.delete_run(run_id, BOB)
    with pytest.raises(InputError, match="only an admin"):
        delete_evaluation(workspace, evaluation_id, BOB)
    delete_evaluation(workspace, evaluation_id, ALICE)
    workspace.delete_run(run_id, None)  # personal mode: anyone, as before


def test_personal_mode_records_export_as_before(workspace):
    run_id = _run(workspace)
    workspace.add_note("Ana", "ok", 1, run_id=run_id)
    workspace.save_template_version("menu", "Q: {q}", {}, author="Ana")
    records = [json.loads(line) for line in workspace.export_jsonl().splitlines()]
    assert not any(key in record for record in records for key in ("author_sub", "author_email"))
    assert "author" not in next(r for r in records if r["kind"] == "run")
    assert workspace.notes(run_id=run_id)[0].author == Author("Ana")


def test_export_carries_the_authors_and_import_keeps_them(database_url, tmp_path):
    source = Workspace.open(database_url)
    try:
        bob, carol = Author.of(BOB), Author.of(CAROL)
        run_id = _run(source, bob)
        source.add_note("", "fine", None, run_id=run_id, by=carol)
        review_id = _review(source, bob)
        stored = load_review(source, review_id)
        item = stored.items[0]
        give_verdict(source, review_id, item.id, "Carol", "first", 0, by=carol)
        exported = source.export_jsonl()
    finally:
        source.close()
    records = [json.loads(line) for line in exported.splitlines()]
    by_kind = {r["kind"]: r for r in records}
    assert by_kind["run"]["author"] == "Bob" and by_kind["run"]["author_sub"] == "bob-002"
    assert by_kind["note"]["author_email"] == "carol@example.org" and by_kind["note"]["reviewer"] == "Carol"
    assert by_kind["review"]["author_sub"] == "bob-002"
    assert by_kind["verdict"]["author_sub"] == "carol-003"

    fresh = Workspace.open(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    try:
        counts = fresh.import_jsonl(exported)
        assert counts.added["run"] == 1 and counts.added["verdict"] == 1
        [run] = fresh.runs()
        assert run.author == Author("Bob", "bob-002", "bob@example.org")
        assert fresh.notes(run_id=run.id)[0].author == Author("Carol", "carol-003", "carol@example.org")
        with pytest.raises(InputError, match=r"\(Bob\)"):
            fresh.delete_run(run.id, CAROL)  # the rule holds on the imported copy
        again = fresh.import_jsonl(exported)
        assert sum(again.added.values()) == 0  # recognised, not added twice
        reexported = {
            json.loads(line)["kind"]: json.loads(line) for line in fresh.export_jsonl().splitlines()
        }
        for kind in ("run", "note", "review", "verdict"):
            for key in ("author_sub", "author_email"):
                assert reexported[kind][key] == by_kind[kind][key], (kind, key)
    finally:
        fresh.close()


def test_an_author_field_too_long_is_refused_on_import(workspace):
    line = {"kind": "run", "id": 1, "prompt": "p", "model": "m", "output": "o", "author_sub": "x" * 256}
    with pytest.raises(InputError, match="author_sub"):
        workspace.import_jsonl(json.dumps(line) + "\n")


# Migration 0007 ---------------------------------------------------------------------------

MIGRATION = "0007"
TABLES = ("template_versions", "runs", "notes", "evaluations")


def _rows(engine: sa.Engine, table: str) -> list[dict]:
    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))]


def test_old_rows_keep_everything_and_get_no_author(database_url):
    engine = sa.create_engine(database_url)
    _alembic(engine, command.upgrade, "0006")
    now = sa.bindparam("now", type_=UTCDateTime())
    with engine.begin() as connection:
        run_id = connection.execute(
            sa.text(
                "INSERT INTO runs (prompt, variables, model, precision, settings, output, stop_reason, tokens, "
                "seconds, first_token_seconds, uid, created_at) VALUES ('p', '{}', 'm', 'bfloat16', '{}', 'o', "
                "'', 0, 0, 0, :uid, :now) RETURNING id"
            ).bindparams(now),
            {"uid": "a" * 32, "now": datetime.now(UTC)},
        ).scalar_one()
        connection.execute(
            sa.text(
                "INSERT INTO notes (run_id, reviewer, rating, text, uid, created_at) "
                "VALUES (:run, 'Ana', 1, 'ok', :uid, :now)"
            ).bindparams(now),
            {"run": run_id, "uid": "b" * 32, "now": datetime.now(UTC)},
        )
    before = {table: _rows(engine, table) for table in TABLES}

    opened = Workspace.open(database_url)  # migrates to the newest revision
    try:
        after = {table: _rows(engine, table) for table in TABLES}
        for table in TABLES:
            assert len(after[table]) == len(before[table]), table  # SQLite's batch mode cascaded nothing
            for old, new in zip(before[table], after[table], strict=True):
                assert {k: new[k] for k in old} == old
                assert new["author_sub"] is None and new["author_email"] is None
        assert after["runs"][0]["author"] is None
        with pytest.raises(InputError, match="only an admin"):
            opened.delete_run(run_id, BOB)
        assert opened.notes(run_id=run_id)[0].reviewer == "Ana"
    finally:
        opened.close()

    _alembic(engine, command.downgrade, "0006")
    assert "author_sub" not in _rows(engine, "runs")[0] and "author" not in _rows(engine, "runs")[0]
    assert len(_rows(engine, "notes")) == 1
    _alembic(engine, command.upgrade, "head")
    engine.dispose()


def test_the_authors_revision_follows_the_reviews_revision():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    assert scripts.get_heads() == [MIGRATION]
    assert scripts.get_revision(MIGRATION).down_revision == "0006"
