"""Every record's own id (uid) travels with export and import, so round trips never double: a
workspace's own export imported into it, A → B → A, and a fresh workspace all end with exactly
the same records (Hypothesis, on SQLite and on a real PostgreSQL). Old files without uids still
import and are still recognised by their content."""

from __future__ import annotations

import json
import re
import uuid

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from salience.core.types import Generation, GenerationSettings, SalienceResult
from workspace.schema import Base
from workspace.store import Workspace

SETTINGS = GenerationSettings(max_new_tokens=8)
UID = re.compile(r"[0-9a-f]{32}")
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
TEMPLATE_NAMES = st.sampled_from(["menu", "qa", "Ünïcode", "n" * 300])


@pytest.fixture
def other_url(request, tmp_path, database_url):
    """A second empty database on the same backend."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'other.sqlite3'}"
    from faults import create_database

    prefix, port = request.getfixturevalue("postgres_server")
    name = f"other_{uuid.uuid4().hex[:12]}"
    create_database(port, name)
    return f"{prefix}/{name}"


@pytest.fixture
def two(database_url, other_url):
    first, second = Workspace.open(database_url), Workspace.open(other_url)
    yield first, second
    first.close()
    second.close()


def _empty(workspace: Workspace) -> None:
    """Delete every row (each Hypothesis example starts from empty workspaces)."""
    with workspace._write() as session, session.begin():
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))


def _result(prompt: str, target: str) -> SalienceResult:
    text = prompt + target
    return SalienceResult(
        text,
        len(prompt),
        ("p", "t"),
        ((0, len(prompt)), (len(prompt), len(text))),
        (1, 2),
        {"grad_l2": np.asarray([0.5, 0.0], np.float32)},
        -1.5,
        0.2,
    )


PLANS = st.fixed_dictionaries(
    {
        "versions": st.lists(st.tuples(TEMPLATE_NAMES, TEXT), max_size=3),
        "runs": st.lists(st.tuples(st.integers(-1, 2), TEXT, TEXT), max_size=3),
        "saliences": st.lists(st.integers(0, 2), max_size=3),
        "comparisons": st.lists(TEXT, max_size=2),
        "notes": st.lists(st.tuples(st.integers(-2, 2), st.sampled_from([1, -1, None]), TEXT), max_size=3),
    }
)


def _fill(workspace: Workspace, plan: dict, label: str) -> None:
    """Rows made through the store, as the app makes them (``label`` keeps two workspaces apart)."""
    versions = [workspace.save_template_version(name, text, {"v": text}) for name, text in plan["versions"]]
    runs = []
    for version, prompt, output in plan["runs"]:
        version_id = versions[version] if 0 <= version < len(versions) else None
        generation = Generation(label + prompt, output, (1,), "eos", 0.5, 0.1)
        runs.append(workspace.record_run(generation, "m", "float32", SETTINGS, {"v": prompt}, version_id))
    for run in plan["saliences"]:
        if run < len(runs):
            workspace.record_salience(_result("Q:", " a"), "m", "float32", "Q:", " a", None, runs[run])
    links = [
        workspace.save({"state": {"label": label, "text": text}, "variants": []})
        for text in plan["comparisons"]
    ]
    for subject, rating, text in plan["notes"]:
        on_run = {"run_id": runs[subject]} if 0 <= subject < len(runs) else None
        on_link = {"comparison_id": links[-subject - 1]} if -len(links) <= subject < 0 else None
        if on_run or on_link:
            workspace.add_note("Ana", "note " + text, rating, **(on_run or on_link))


def contents(workspace: Workspace) -> list[dict]:
    """Every record, with links named by uid instead of this workspace's row ids."""
    records = list(workspace.export_records())
    uids = {(r["kind"], r["id"]): r.get("uid") for r in records}
    out = []
    for record in records:
        record = dict(record)
        if record["kind"] != "comparison":
            record.pop("id")
        for field, kind in (("run_id", "run"), ("template_version_id", "template_version")):
            if record.get(field) is not None:
                record[field] = uids[(kind, record[field])]
        out.append(record)
    return sorted(out, key=lambda r: json.dumps(r, sort_keys=True))


def without_uids(exported: str) -> str:
    """The export as the code before uids wrote it."""
    lines = (json.loads(line) for line in exported.split("\n") if line)
    return "".join(json.dumps({k: v for k, v in line.items() if k != "uid"}) + "\n" for line in lines)


def counted(workspace: Workspace) -> dict[str, int]:
    kinds = [record["kind"] for record in workspace.export_records()]
    return {kind: kinds.count(kind) for kind in ("template_version", "run", "salience", "comparison", "note")}


EXPORTED = ("template_version", "run", "salience", "note", "comparison")
EXAMPLES = settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@EXAMPLES
@given(plan=PLANS)
def test_a_workspace_imported_into_itself_stays_the_same(two, plan):
    workspace, _ = two
    _empty(workspace)
    _fill(workspace, plan, "a")
    before, records = contents(workspace), counted(workspace)

    exported = workspace.export_jsonl()
    done = workspace.import_jsonl(exported)

    assert contents(workspace) == before
    assert done.added == dict.fromkeys(done.added, 0)
    assert done.present == records  # every record was recognised and said so
    written_before_uids = workspace.import_jsonl(without_uids(exported))
    assert contents(workspace) == before and written_before_uids.present == records


@EXAMPLES
@given(plan=PLANS)
def test_an_export_restores_everything_in_a_fresh_workspace(two, plan):
    workspace, fresh = two
    _empty(workspace)
    _empty(fresh)
    _fill(workspace, plan, "a")

    done = fresh.import_jsonl(workspace.export_jsonl())

    assert contents(fresh) == contents(workspace)
    assert done.added == counted(workspace) and done.skipped == 0


@EXAMPLES
@given(plan_a=PLANS, plan_b=PLANS)
def test_a_to_b_to_a_adds_only_what_b_made(two, plan_a, plan_b):
    a, b = two
    _empty(a)
    _empty(b)
    _fill(a, plan_a, "a")
    _fill(b, plan_b, "b")
    only_b = counted(b)

    b.import_jsonl(a.export_jsonl())
    before = counted(a)
    back = a.import_jsonl(b.export_jsonl())

    assert contents(a) == contents(b)  # one workspace's records, the other's, each once
    assert back.added == only_b
    assert counted(a) == {kind: before[kind] + only_b[kind] for kind in before}
    again = a.import_jsonl(b.export_jsonl())  # and once more adds nothing
    assert again.added == dict.fromkeys(again.added, 0)


def _filled(workspace: Workspace) -> None:
    _fill(
        workspace,
        {
            "versions": [("menu", "Q: {v}"), ("menu", "Q2: {v}")],
            "runs": [(0, "hi", " hello"), (1, "yo", " there"), (-1, "", "")],
            "saliences": [0, 0, 2],
            "comparisons": ["x"],
            "notes": [(0, 1, "ok"), (-1, None, "nice")],
        },
        "a",
    )


def test_every_exported_record_has_a_unique_uid(two):
    workspace, _ = two
    _filled(workspace)
    records = [r for r in workspace.export_records() if r["kind"] != "comparison"]
    assert all(UID.fullmatch(r["uid"]) for r in records)
    assert len({(r["kind"], r["uid"]) for r in records}) == len(records)


def test_an_old_export_without_uids_still_imports_and_is_recognised(two):
    """Files from before uids: recognised by their content, in both directions and at home."""
    workspace, other = two
    _filled(workspace)
    new = workspace.export_jsonl()
    old = without_uids(new)
    assert workspace.import_jsonl(old).added == dict.fromkeys(EXPORTED, 0)  # its own old export: nothing
    first = other.import_jsonl(old)
    assert first.added == counted(workspace)
    assert other.import_jsonl(old).skipped == sum(first.added.values())  # twice adds nothing
    assert other.import_jsonl(new).added == dict.fromkeys(first.added, 0)  # nor the same records with uids
    stored = {r["uid"] for r in other.export_records() if r["kind"] != "comparison"}
    assert all(UID.fullmatch(uid) for uid in stored)


def test_a_record_id_that_is_not_a_uid_is_refused_naming_the_form(two):
    from salience.core.errors import InputError

    workspace, _ = two
    line = {"kind": "run", "id": 1, "uid": "not-a-uid", "prompt": "p", "model": "m", "output": "o"}
    with pytest.raises(InputError) as raised:
        workspace.import_jsonl(json.dumps(line))
    assert str(raised.value) == (
        "Line 1 (run, id 1): uid: should be a record's own id: 32 letters a–f and digits (as exported), "
        'not "not-a-uid"; leave it out to import the record as a new one.'
    )
    twice = [line | {"uid": "a" * 32}, line | {"id": 2, "uid": "a" * 32}]
    with pytest.raises(InputError, match=r"Line 2 \(run, id 2\): uid: already used by line 1"):
        workspace.import_jsonl("".join(json.dumps(r) + "\n" for r in twice))
    assert list(workspace.export_records()) == []
