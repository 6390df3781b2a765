"""The workspace store on SQLite and on a real PostgreSQL: schema, autosaved records, search,
notes, import/export, exact text, concurrent writers, crashes and damaged files."""

from __future__ import annotations

import json
import multiprocessing
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from salience.core.errors import InputError
from salience.core.types import Generation, GenerationSettings, SalienceResult
from workspace.database import WorkspaceUnavailable
from workspace.schema import Base
from workspace.snapshots import SnapshotNotFound
from workspace.store import RunFilter, Workspace

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = GenerationSettings(max_new_tokens=8, stop_sequences=("\n\n",))


def generation(prompt="Q: hi\nA:", text=" hello"):
    return Generation(prompt, text, (1, 2), "max_new_tokens", 0.5, 0.1)


def salience_result(prompt="Q: hi\nA:", target=" hello"):
    text = prompt + target
    offsets = ((0, 0), (0, 2), (2, len(prompt)), (len(prompt), len(text)))
    return SalienceResult(
        text,
        len(prompt),
        ("<bos>", "Q:", " hi\nA:", " hello"),
        offsets,
        (3, 4),
        {"grad_l2": np.asarray([0.5, 0.25, 0.125, 0.0], np.float32)},
        -1.5,
        0.2,
    )


@pytest.fixture
def workspace(database_url):
    opened = Workspace.open(database_url)
    yield opened
    opened.close()


def test_migrations_build_the_schema_of_the_models(workspace):
    with workspace.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_sqlite_uses_wal(tmp_path):
    opened = Workspace.open(f"sqlite:///{tmp_path / 'w.sqlite3'}")
    with opened.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    opened.close()


def test_template_versions_dedupe_and_restore(workspace):
    first = workspace.save_template_version("menu", "Likes {x}", {"x": "cheese"}, author="Ana")
    assert workspace.save_template_version("menu", "Likes {x}", {"x": "cheese"}) == first
    second = workspace.save_template_version("menu", "Likes {x}!", {"x": "cheese"})
    assert [v.id for v in workspace.versions("menu")] == [second, first]
    assert workspace.version(first).text == "Likes {x}" and workspace.version(first).author == "Ana"
    assert workspace.template_names() == ["menu"]
    with pytest.raises(InputError):
        workspace.version(9999)
    with pytest.raises(InputError, match="empty"):
        workspace.save_template_version("  ", "x", {})


def test_runs_salience_and_search(workspace):
    version = workspace.save_template_version("menu", "Q: {q}\nA:", {"q": "hi"})
    run = workspace.record_run(
        generation(), "embedded", "bfloat16", SETTINGS, {"q": "hi"}, version, "browser-1"
    )
    other = workspace.record_run(
        generation("Q: bye\nA:", " farewell"), "gguf:x", "float32", SETTINGS, {"q": "bye"}
    )
    stored_id = workspace.record_salience(
        salience_result(), "embedded", "bfloat16", "Q: hi\nA:", " hello", None, run
    )
    [stored] = workspace.salience_for_run(run)
    assert stored.id == stored_id and stored.target_text == " hello"
    np.testing.assert_array_equal(stored.result.scores["grad_l2"], salience_result().scores["grad_l2"])
    assert stored.result.offsets == salience_result().offsets

    row = workspace.run(run)
    assert (row.template, row.output, row.settings["stop_sequences"]) == ("menu", " hello", ["\n\n"])
    assert [r.id for r in workspace.runs()] == [other, run]
    assert [r.id for r in workspace.runs(RunFilter(text="FAREWELL"))] == [other]
    assert [r.id for r in workspace.runs(RunFilter(text="100%_"))] == []
    assert [r.id for r in workspace.runs(RunFilter(template="menu"))] == [run]
    assert [r.id for r in workspace.runs(RunFilter(variable_value="bye"))] == [other]
    assert [r.id for r in workspace.runs(RunFilter(model="gguf:x"))] == [other]
    later = datetime.now(UTC) + timedelta(hours=1)
    assert workspace.runs(RunFilter(since=later)) == []
    assert len(workspace.runs(RunFilter(until=later))) == 2
    assert workspace.models() == ["embedded", "gguf:x"]

    workspace.add_note("Ana", "Wrong answer", -1, run_id=run)
    workspace.add_note("Ben", "", 1, run_id=other)
    assert [r.id for r in workspace.runs(RunFilter(with_notes=True))] == [run]
    assert [r.id for r in workspace.runs(RunFilter(rating="down"))] == [run]
    assert [r.id for r in workspace.runs(RunFilter(rating="up"))] == [other]
    assert workspace.run(run).notes == 1 and workspace.run(run).rating == -1
    noted = workspace.noted_runs()
    assert [(row["run"], row["template"], row["reviewer"], row["rating"]) for row in noted] == [
        (run, "menu", "Ana", -1),
        (other, None, "Ben", 1),
    ]


def test_note_validation(workspace):
    run = workspace.record_run(generation(), "embedded", "bfloat16", SETTINGS)
    with pytest.raises(InputError, match="reviewer"):
        workspace.add_note("", "x", run_id=run)
    with pytest.raises(InputError, match="thumbs"):
        workspace.add_note("Ana", "x", 5, run_id=run)
    with pytest.raises(InputError, match="one run or one comparison"):
        workspace.add_note("Ana", "x")
    with pytest.raises(InputError, match="Write a note"):
        workspace.add_note("Ana", "  ", run_id=run)
    with pytest.raises(InputError, match="no run"):
        workspace.add_note("Ana", "x", run_id=run + 100)


def test_browser_state_reviewer_and_comparisons(workspace):
    assert workspace.load_state("b1") is None
    workspace.save_state("b1", {"template": "x {y}", "variants": []})
    workspace.save_state("b1", {"template": "x {y}!", "variants": []})
    assert workspace.load_state("b1")["template"] == "x {y}!"
    workspace.set_reviewer("b1", "  Ana  Lee ")
    assert workspace.reviewer("b1") == "Ana Lee"
    assert workspace.load_state("b1")["template"] == "x {y}!"
    link = workspace.save({"state": {"a": 1}, "variants": []})
    assert workspace.save({"variants": [], "state": {"a": 1}}) == link
    assert workspace.load(link) == {"state": {"a": 1}, "variants": []}
    workspace.add_note("Ana", "Great demo", 1, comparison_id=link)
    assert [n.text for n in workspace.notes(comparison_id=link)] == ["Great demo"]
    [listed] = workspace.comparisons()
    assert (listed.id, listed.variants, listed.notes) == (link, (), 1)
    with pytest.raises(SnapshotNotFound):
        workspace.load("0123456789ab")
    with pytest.raises(InputError, match="not a comparison link"):
        workspace.load("../etc")


def test_export_import_round_trip(workspace, tmp_path):
    version = workspace.save_template_version("menu", "Q: {q}\nA:", {"q": "hi"})
    run = workspace.record_run(generation(), "embedded", "bfloat16", SETTINGS, {"q": "hi"}, version)
    workspace.record_salience(salience_result(), "embedded", "bfloat16", "Q: hi\nA:", " hello", (8, 14), run)
    workspace.add_note("Ana", "ok", 1, run_id=run)
    link = workspace.save({"state": {}, "variants": [{"name": "v"}]})
    workspace.add_note("Ben", "nice", None, comparison_id=link)
    exported = workspace.export_jsonl()
    kinds = [json.loads(line)["kind"] for line in exported.splitlines()]
    assert kinds == ["template_version", "run", "salience", "comparison", "note", "note"]

    target = Workspace.open(f"sqlite:///{tmp_path / 'copy.sqlite3'}")
    counts = target.import_jsonl(exported.encode())
    assert counts.added == {"template_version": 1, "run": 1, "salience": 1, "note": 2, "comparison": 1}
    assert counts.skipped == 0

    def strip(text):  # row ids are the target's own; uids travel
        return [
            {k: v for k, v in json.loads(line).items() if k not in ("id", "run_id", "template_version_id")}
            for line in text.splitlines()
        ]

    assert strip(target.export_jsonl()) == strip(exported)
    again = target.import_jsonl(exported)  # the same file twice adds nothing
    assert again.added == dict.fromkeys(counts.added, 0) and again.present == counts.added
    assert strip(target.export_jsonl()) == strip(exported)
    notes_only = workspace.export_jsonl(notes_only=True)
    assert [json.loads(line)["kind"] for line in notes_only.splitlines()] == [
        "template_version",
        "run",
        "salience",
        "note",
    ]
    target.close()


def test_import_refuses_bad_files_whole(workspace):
    good = json.dumps({"kind": "run", "id": 1, "prompt": "p", "model": "m", "output": "o"})
    with pytest.raises(InputError, match="Line 2 is not JSON"):
        workspace.import_jsonl(good + "\n{oops\n")
    with pytest.raises(InputError, match="Line 1 is not a workspace record"):
        workspace.import_jsonl('{"kind": "alien"}\n')
    with pytest.raises(InputError, match=r"Line 2 \(run, id 2\): prompt: required; model: required"):
        workspace.import_jsonl(good + "\n" + json.dumps({"kind": "run", "id": 2}) + "\n")
    with pytest.raises(InputError, match="UTF-8"):
        workspace.import_jsonl(b"\xff\xfe")
    assert workspace.runs() == []  # nothing from the refused files landed


TEXTS = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS)
def test_any_unicode_round_trips(workspace, text):
    version = workspace.save_template_version("unicode", text, {"v": text})
    assert workspace.version(version).text == text and workspace.version(version).variables == {"v": text}
    run = workspace.record_run(generation(text, text), "m", "bfloat16", SETTINGS, {"v": text})
    row = workspace.run(run)
    assert (row.prompt, row.output) == (text, text)
    workspace.save_state("unicode", {"t": text})
    assert workspace.load_state("unicode") == {"t": text}


def test_large_and_awkward_text_round_trips(workspace):
    for text in ("x" * 3_000_000, "\x00 nul \x00", "\ue000b64:looks escaped", "🦜 עברית 中文 \u200b\r\n\t"):
        run = workspace.record_run(generation(text, text[::-1]), "m", "bfloat16", SETTINGS)
        row = workspace.run(run)
        assert row.prompt == text and row.output == text[::-1]


def _add_notes(url: str, reviewer: str, count: int, run_id: int) -> None:
    opened = Workspace.open(url)
    for index in range(count):
        opened.add_note(reviewer, f"{reviewer} note {index}", 1 if index % 2 else -1, run_id=run_id)
        opened.save_template_version(f"t-{reviewer}", f"version {index}", {})
    opened.close()


def test_concurrent_threads_lose_no_write(workspace):
    run = workspace.record_run(generation(), "m", "bfloat16", SETTINGS)
    errors = []

    def write(name):
        try:
            for index in range(25):
                workspace.add_note(name, f"{name} {index}", run_id=run)
                workspace.save_state(name, {"n": index})
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(f"reviewer {i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    notes = workspace.notes(run_id=run)
    assert len(notes) == 200 and len({n.text for n in notes}) == 200


def test_concurrent_processes_lose_no_write(workspace, database_url):
    run = workspace.record_run(generation(), "m", "bfloat16", SETTINGS)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_notes, args=(database_url, f"r{i}", 20, run)) for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert len(workspace.notes(run_id=run)) == 80
    assert all(len(workspace.versions(f"t-r{i}")) == 20 for i in range(4))


def test_two_reviewers_note_the_same_run_at_once(workspace, database_url):
    run = workspace.record_run(generation(), "m", "bfloat16", SETTINGS)
    barrier = threading.Barrier(2)

    def note(name):
        barrier.wait()
        workspace.add_note(name, f"{name} was here", run_id=run)

    threads = [threading.Thread(target=note, args=(name,)) for name in ("Ana", "Ben")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(n.reviewer for n in workspace.notes(run_id=run)) == ["Ana", "Ben"]


CRASHING_WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from salience.core.types import Generation, GenerationSettings
    from workspace.schema import Run
    from workspace.store import Workspace
    ws = Workspace.open({url!r})
    if {mode!r} == "mid-transaction":
        with ws._write() as session, session.begin():
            for i in range(50):
                session.add(Run(prompt="p", model="m", precision="bfloat16", output=str(i)))
            session.flush()
            print("inside", flush=True)
            time.sleep(60)
    else:
        i = 0
        while True:
            run = ws.record_run(Generation("p", "o" * 5000, (1,), "end_of_text", 0.1, 0.1), "m", "bfloat16",
                                GenerationSettings())
            ws.add_note("crash", "note " + str(i), run_id=run)
            print("wrote", i + 1, flush=True)
            i += 1
    """
)
WRITTEN_BEFORE_KILL = 20


def _start_writer(database_url: str, mode: str) -> subprocess.Popen:
    script = CRASHING_WRITER.format(root=str(ROOT), url=database_url, mode=mode)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def test_a_writer_killed_mid_transaction_leaves_nothing_behind(workspace, database_url):
    process = _start_writer(database_url, "mid-transaction")
    assert process.stdout.readline().strip() == "inside"  # 50 rows flushed, not committed
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert workspace.runs(RunFilter(limit=100_000)) == []
    _still_consistent(workspace, database_url)


def test_a_busy_writer_killed_between_commits_leaves_whole_rows(workspace, database_url):
    process = _start_writer(database_url, "busy-writer")
    committed = 0
    while committed < WRITTEN_BEFORE_KILL:  # wait for N committed runs (each with its note)
        line = process.stdout.readline()
        assert line, "the writer stopped before writing"
        committed = int(line.split()[1])
    process.send_signal(signal.SIGKILL)  # while it writes more
    process.wait()
    runs = workspace.runs(RunFilter(limit=100_000))
    notes = workspace.notes()
    assert len(runs) >= WRITTEN_BEFORE_KILL and len(notes) >= WRITTEN_BEFORE_KILL
    assert all(len(r.output) == 5000 for r in runs)
    assert len(notes) in (len(runs), len(runs) - 1)  # at most the last run lacks its note
    assert {n.run_id for n in notes} <= {r.id for r in runs}
    _still_consistent(workspace, database_url)


def _still_consistent(workspace, database_url) -> None:
    workspace.record_run(generation(), "m", "bfloat16", SETTINGS)  # still writable
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_damaged_file_is_kept_aside_and_a_fresh_workspace_starts(tmp_path):
    path = tmp_path / "workspace.sqlite3"
    garbage = b"this is not a database" * 100
    path.write_bytes(garbage)
    opened = Workspace.open(f"sqlite:///{path}")
    assert str(path) in opened.notice and "was damaged" in opened.notice and "moved to" in opened.notice
    [aside] = tmp_path.glob("workspace.sqlite3.damaged-*")
    assert aside.read_bytes() == garbage
    opened.record_run(generation(), "m", "bfloat16", SETTINGS)
    assert len(opened.runs()) == 1
    opened.close()
    again = Workspace.open(f"sqlite:///{path}")
    assert again.notice == "" and len(again.runs()) == 1
    again.close()


def test_unreachable_database_says_so(postgres_server):
    prefix, port = postgres_server
    with pytest.raises(WorkspaceUnavailable, match="cannot be used"):
        Workspace.open(f"postgresql+psycopg://workbench@127.0.0.1:{port}/no_such_database")
    with pytest.raises(WorkspaceUnavailable, match="not a database URL"):
        Workspace.open("not a url")


def test_command_line_export_and_import(tmp_path, monkeypatch, capsys):
    from workspace.__main__ import main

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'a.sqlite3'}")
    assert main(["upgrade"]) == 0
    opened = Workspace.open()
    opened.record_run(generation(), "m", "bfloat16", SETTINGS)
    opened.close()
    assert main(["export", str(tmp_path / "out.jsonl")]) == 0
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'b.sqlite3'}")
    assert main(["import", str(tmp_path / "out.jsonl")]) == 0
    assert "1 run" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "missing.jsonl")]) == 2
    assert "error:" in capsys.readouterr().err


def _statements(workspace) -> list[tuple[str, dict]]:
    """Every SQL statement the workspace runs from now on, with its execution options."""
    seen: list[tuple[str, dict]] = []

    @event.listens_for(workspace.engine, "before_cursor_execute")
    def capture(connection, cursor, statement, parameters, context, executemany):
        seen.append((statement, dict(context.execution_options)))

    return seen


def test_variable_search_filters_and_limits_in_the_database(workspace):
    ids = [
        workspace.record_run(generation(), "m", "bfloat16", SETTINGS, {"q": f"Value {i}", "other": "x"})
        for i in range(12)
    ]
    special = workspace.record_run(generation(), "m", "bfloat16", SETTINGS, {"q": "50%_off \\ now"})
    seen = _statements(workspace)
    found = workspace.runs(RunFilter(variable_value="value", limit=5))
    assert [r.id for r in found] == ids[::-1][:5]
    [(sql, _)] = [(s, o) for s, o in seen if "FROM runs" in s]
    assert "LIMIT" in sql.upper() and "json_each" in sql  # not every run loaded into Python
    assert [r.id for r in workspace.runs(RunFilter(variable_value="%_off \\"))] == [special]
    assert [r.id for r in workspace.runs(RunFilter(variable_value="%"))] == [special]
    assert [r.id for r in workspace.runs(RunFilter(variable_value="_"))] == [special]
    assert workspace.runs(RunFilter(variable_value="q")) == []  # names are not values
    assert len(workspace.runs(RunFilter(variable_value="X", limit=100))) == 12


def test_a_selected_export_filters_and_streams_in_the_database(workspace):
    runs = [workspace.record_run(generation(), "m", "bfloat16", SETTINGS) for _ in range(5)]
    workspace.add_note("Ana", "ok", 1, run_id=runs[3])
    seen = _statements(workspace)
    records = list(workspace.export_records(run_ids=[runs[1]]))
    assert [(r["kind"], r["id"]) for r in records] == [("run", runs[1])]
    selects = [(s, o) for s, o in seen if s.lstrip().upper().startswith("SELECT")]
    assert selects and all(o.get("yield_per") for _, o in selects)  # streamed, never all at once
    assert all("WHERE" in s.upper() for s, _ in selects)  # filtered by the database
    notes_only = list(workspace.export_records(notes_only=True))
    assert [(r["kind"], r.get("run_id", r["id"])) for r in notes_only] == [
        ("run", runs[3]),
        ("note", runs[3]),
    ]
