"""Import validates every field before writing (one clear line per bad row), links records by the
file's ids, and adds nothing twice; on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from salience.core.errors import InputError
from salience.core.types import Generation, GenerationSettings, SalienceResult
from workspace.store import RunFilter, Workspace

ROOT = Path(__file__).resolve().parents[2]
WHEN = "2026-11-01T10:00:00+00:00"


def version(**fields):
    record = {
        "kind": "template_version",
        "id": 1,
        "template": "menu",
        "text": "Q: {q}",
        "variables": {"q": "hi"},
    }
    return record | fields


def run(**fields):
    record = {
        "kind": "run",
        "id": 1,
        "template_version_id": 1,
        "prompt": "Q: hi",
        "variables": {"q": "hi"},
        "model": "embedded",
        "precision": "float32",
        "settings": {"max_new_tokens": 8, "stop_sequences": ["\n"], "temperature": 0.0},
        "output": " hello",
        "stop_reason": "end_of_text",
        "tokens": 2,
        "seconds": 0.5,
        "first_token_seconds": 0.1,
        "created_at": WHEN,
    }
    return record | fields


def result_json():
    text = "Q: hi hello"
    return SalienceResult(
        text,
        5,
        ("Q:", " hi", " hello"),
        ((0, 2), (2, 5), (5, 11)),
        (2, 3),
        {"grad_l2": np.asarray([0.5, 0.25, 0.0], np.float32)},
        -1.5,
        0.2,
    ).to_json()


def result_with_scores(**scores) -> dict:
    """A stored result with some method's scores replaced (wherever the format keeps them)."""
    data = result_json()
    (data["scores"] if isinstance(data.get("scores"), dict) else data).update(scores)
    return data


def salience(**fields):
    return {
        "kind": "salience",
        "id": 1,
        "run_id": 1,
        "model": "embedded",
        "prompt": "Q: hi",
        "target": " hello",
        "span": [5, 11],
        "result": result_json(),
    } | fields


def note(**fields):
    return {"kind": "note", "id": 1, "run_id": 1, "reviewer": "Ana", "rating": 1, "text": "ok"} | fields


def jsonl(*records) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


@pytest.fixture
def workspace(database_url):
    opened = Workspace.open(database_url)
    yield opened
    opened.close()


def everything(workspace) -> list[dict]:
    return list(workspace.export_records())


DEEP = "[" * 100_000 + "]" * 100_000

BAD_ROWS = [
    (note(rating=7), "Line 4 (note, id 1): rating: should be 1 (thumbs up), -1 (thumbs down) or null"),
    (note(rating="banana"), 'Line 4 (note, id 1): rating: should be a valid integer, not "banana"'),
    (note(rating=True), "Line 4 (note, id 1): rating: should be a valid integer, not true"),
    (note(reviewer=42), "Line 4 (note, id 1): reviewer: should be a valid string, not 42"),
    (note(reviewer="   "), "Line 4 (note, id 1): reviewer: should have at least 1 character"),
    (note(run_id=None), "Line 4 (note, id 1): run_id, comparison_id: a note belongs to one run or one"),
    (note(run_id=9), "Line 4 (note, id 1): run_id: 9 should be the id of a run in this file."),
    (run(prompt=None), "Line 2 (run, id 1): prompt: should be a valid string, not null"),
    (
        run(variables={"q": {"nested": 1}}),
        "Line 2 (run, id 1): variables.q: should be a valid string, not an",
    ),
    (run(seconds="NaN"), 'Line 2 (run, id 1): seconds: should be a valid number, not "NaN"'),
    ('{"kind": "run", "id": 1, "seconds": NaN}', "seconds: should be a finite number, not NaN"),
    (run(tokens=1e30), "Line 2 (run, id 1): tokens: should be a valid integer, not 1e+30"),
    (run(tokens=10**30), "Line 2 (run, id 1): tokens: should be less than or equal to 2147483647"),
    (
        run(settings={"max_new_tokens": 10_000}),
        "settings.max_new_tokens: should be less than or equal to 512",
    ),
    (
        run(settings={"temperature": 0.01}),
        "settings.temperature: should be 0 (greedy) or between 0.05 and 2.0",
    ),
    (run(model="m\x00"), "Line 2 (run, id 1): model: must not contain NUL characters"),
    (run(model="m" * 501), "Line 2 (run, id 1): model: should have at most 500 characters"),
    (run(template_version_id=5), "template_version_id: 5 should be the id of a template version in this"),
    (run(colour="red"), "Line 2 (run, id 1): colour: not a field of this kind of record"),
    (run(created_at="yesterday"), "Line 2 (run, id 1): created_at: should be a valid datetime"),
    (
        run(created_at="0001-01-01T00:00:00+01:00"),
        "Line 2 (run, id 1): created_at: should be a date and time between 0001-01-01T00:00:00Z and "
        "9999-12-31T23:59:59Z once moved to UTC, not 0001-01-01T00:00:00+01:00.",
    ),
    (
        note(created_at="9999-12-31T23:59:59-05:00"),
        "Line 4 (note, id 1): created_at: should be a date and time between 0001-01-01T00:00:00Z and "
        "9999-12-31T23:59:59Z once moved to UTC, not 9999-12-31T23:59:59-05:00.",
    ),
    (version(uid="A" * 32), "Line 1 (template_version, id 1): uid: should be a record's own id: 32 letters"),
    (
        version(author="a" * 201),
        "Line 1 (template_version, id 1): author: should have at most 200 characters",
    ),
    (note(reviewer="r" * 201), "Line 4 (note, id 1): reviewer: should have at most 200 characters"),
    (salience(span=[1]), "Line 3 (salience, id 1): span: should be a pair [start, end]"),
    (salience(span=[9, 3]), "Line 3 (salience, id 1): span: should be [start, end] with start < end"),
    (salience(result={"text": "x"}), "Line 3 (salience, id 1): result: should be a saved explanation"),
    (salience(result=result_with_scores(grad_l2=[1.0])), "result: should have one finite score per token"),
    (salience(result=result_with_scores(banana=[1.0, 2.0, 3.0])), "result: has scores of an unknown method"),
    (DEEP, "Line 2 is not JSON (nested too deeply)."),
    ('{"kind": "alien"}', "Line 2 is not a workspace record: it should be an object whose 'kind' is one of"),
    ("[1]", "Line 2 is not a workspace record"),
    ("{oops", "Line 2 is not JSON"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_ROWS, ids=[m[:50] for _, m in BAD_ROWS])
def test_a_bad_row_is_refused_with_one_clear_line_and_nothing_is_written(workspace, bad, message):
    kind = bad["kind"] if isinstance(bad, dict) else "run"
    good = {"template_version": version(), "run": run(), "salience": salience(), "note": note()}
    rows = [good["template_version"], good["run"], good["salience"], good["note"]]
    position = {"template_version": 0, "run": 1, "salience": 2, "note": 3}[kind]
    if isinstance(bad, str):
        rows[1] = bad
        rows = rows[:2] if bad.startswith(("[", "{oops", '{"kind": "alien')) else rows
    else:
        rows[position] = bad
    with pytest.raises(InputError) as raised:
        workspace.import_jsonl(jsonl(*rows))
    text = str(raised.value)
    assert message in text
    assert len(text.splitlines()) == 1  # one line for the one bad row
    assert "Traceback" not in text and "pydantic" not in text and "errors.pydantic.dev" not in text
    assert everything(workspace) == []  # all or nothing


def test_every_bad_row_gets_its_own_line(workspace):
    rows = [version(), run(), note(rating=7), note(id=2, reviewer=42, rating=2), note(id=3)]
    with pytest.raises(InputError) as raised:
        workspace.import_jsonl(jsonl(*rows))
    lines = str(raised.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["Line 3 (note, id 1)", "Line 4 (note, id 2)"]
    assert "reviewer: should be a valid string" in lines[1] and "rating: should be 1" in lines[1]


def test_duplicated_ids_are_refused(workspace):
    rows = [version(), version(text="other {q}"), run()]
    with pytest.raises(InputError, match=r"Line 2 \(template_version, id 1\): id: already used by line 1"):
        workspace.import_jsonl(jsonl(*rows))
    assert everything(workspace) == []


def test_importing_the_same_file_twice_adds_nothing(workspace):
    link = workspace.save({"state": {}, "variants": [{"name": "v"}]})
    text = jsonl(
        version(created_at=WHEN),
        run(),
        salience(),
        note(),
        note(id=2, run_id=None, comparison_id=link, rating=None, text="nice"),
    )
    first = workspace.import_jsonl(text)
    assert first.added == {"template_version": 1, "run": 1, "salience": 1, "note": 2, "comparison": 0}
    assert first.skipped == 0
    before = everything(workspace)
    second = workspace.import_jsonl(text.encode())
    assert second.added == dict.fromkeys(first.added, 0)
    assert second.present == {**first.added, "comparison": 0} and second.skipped == 5
    assert everything(workspace) == before
    [stored] = workspace.runs()
    assert stored.template == "menu" and stored.rating == 1 and stored.notes == 1
    assert stored.settings["max_new_tokens"] == 8 and stored.settings["stop_sequences"] == ["\n"]
    assert stored.created_at.isoformat() == WHEN


def test_an_export_imports_into_a_fresh_workspace_and_opens(workspace, tmp_path):
    vid = workspace.save_template_version("menu", "Q: {q}", {"q": "hi"})
    rid = workspace.record_run(
        Generation("Q: hi", " hello", (1, 2), "end_of_text", 0.5, 0.1),
        "embedded",
        "float32",
        GenerationSettings(max_new_tokens=8, temperature=0.7, top_k=40, top_p=0.9, seed=3),
        {"q": "hi"},
        vid,
    )
    workspace.add_note("Ana", "ok", -1, run_id=rid)
    other = Workspace.open(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    counts = other.import_jsonl(workspace.export_jsonl())
    assert counts.added["run"] == 1 and counts.added["note"] == 1
    [row] = other.runs()
    assert row.settings == workspace.run(rid).settings and row.rating == -1
    other.close()


def test_a_comparison_note_may_point_at_a_comparison_saved_here(workspace):
    link = workspace.save({"state": {}, "variants": []})
    counts = workspace.import_jsonl(jsonl(note(run_id=None, comparison_id=link)))
    assert counts.added["note"] == 1
    with pytest.raises(InputError, match='comparison_id: "0123456789ab" should be the id of a comparison'):
        workspace.import_jsonl(jsonl(note(id=2, run_id=None, comparison_id="0123456789ab")))


def test_command_line_import_prints_one_line_per_bad_row(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(jsonl(version(), run(tokens=1e30), note(reviewer=42), DEEP), encoding="utf-8")
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'w.sqlite3'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "workspace", "import", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert lines[0] == f"error: {path}: nothing was imported."
    assert [line.strip().split(":")[0] for line in lines[1:]] == [
        "Line 2 (run, id 1)",
        "Line 3 (note, id 1)",
        "Line 4 is not JSON (nested too deeply).",
    ]
    assert "Traceback" not in done.stderr
    ok = tmp_path / "ok.jsonl"
    ok.write_text(jsonl(version(), run()), encoding="utf-8")
    for expected in ("Imported 1 template version, 1 run.", "Nothing new to import. 2 records were already"):
        done = subprocess.run(
            [sys.executable, "-m", "workspace", "import", str(ok)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0 and done.stdout.startswith(expected), done.stderr


def test_run_ids_beyond_any_row_are_no_run(workspace):
    for huge in (10**23, 2**31, -1, 0):
        with pytest.raises(InputError, match="There is no run"):
            workspace.run(huge)
        with pytest.raises(InputError, match="no run"):
            workspace.add_note("Ana", "x", run_id=huge)
        with pytest.raises(InputError, match="no template version"):
            workspace.version(huge)
    assert workspace.runs(RunFilter(ids=[10**23])) == []
    assert workspace.export_records(run_ids=[10**23]) is not None
    assert list(workspace.export_records(run_ids=[10**23])) == []


def test_nul_characters_in_long_text_and_values_import_on_every_backend(workspace):
    text = "a\x00b \ue000b64:c"
    rows = [
        version(text=text, variables={"q": text}),
        run(prompt=text, output=text, variables={"q": text}, settings={"stop_sequences": [text]}),
        note(text=text),
    ]
    counts = workspace.import_jsonl(jsonl(*rows))
    assert counts.added["run"] == 1
    [stored] = workspace.runs()
    assert (stored.prompt, stored.output, stored.variables["q"]) == (text, text, text)
    assert stored.settings["stop_sequences"] == [text]
    assert workspace.notes()[0].text == text


def test_a_value_postgresql_refuses_despite_the_checks_is_one_line(postgres_url, monkeypatch):
    """Defence in depth: a DataError from PostgreSQL (an integer out of range) becomes one line."""
    from workspace import records

    opened = Workspace.open(postgres_url)
    fields = run(tokens=10**30, template_version_id=None, created_at=None) | {
        "settings": records.SettingsRecord()
    }
    unchecked = records.RunRecord.model_construct(**fields)
    monkeypatch.setattr(records, "parse_lines", lambda text: [(1, unchecked)])
    with pytest.raises(InputError) as raised:
        opened.import_jsonl(jsonl(run()))
    assert str(raised.value).startswith("The database refused the file (")
    assert len(str(raised.value).splitlines()) == 1
    assert opened.runs() == []
    opened.close()


# Issue 27: no traceback, no silent change ------------------------------------------------


def comparison(**fields):
    state = {"state": {"method": "grad_l2"}, "variants": [{"name": "v"}]}
    return {"kind": "comparison", "state": state} | fields


def test_a_comparison_id_that_is_not_its_content_hash_is_refused_not_replaced(workspace):
    right = workspace.save(comparison()["state"])
    wrong = "0123456789ab"
    with pytest.raises(InputError) as raised:
        workspace.import_jsonl(jsonl(comparison(id=wrong)))
    assert str(raised.value) == (
        f'Line 1 (comparison, id "{wrong}"): id: should be the hash of the comparison\'s content, "{right}" '
        f'(a link\'s id names what it shows), not "{wrong}"; fix it or leave it out.'
    )
    counts = workspace.import_jsonl(jsonl(comparison(id=right), comparison(id=None)))
    assert counts.present["comparison"] == 2 and counts.added["comparison"] == 0


def test_a_long_template_name_is_kept_whole(workspace):
    name = "n" * 4_999 + "!"
    counts = workspace.import_jsonl(jsonl(version(template=name)))
    assert counts.added["template_version"] == 1
    assert workspace.template_names() == [name] and workspace.versions(name)[0].template == name
    assert workspace.save_template_version(name, "other", {}) != workspace.versions(name)[-1].id
    assert len(workspace.versions(name)) == 2  # the same template, found by its whole name
    [record] = [r for r in everything(workspace) if r["text"] == "other"]
    assert record["template"] == name


def test_a_long_reviewer_name_is_refused_naming_the_limit(workspace):
    run_id = workspace.record_run(Generation("Q", "A", (1,), "eos", 0.1, 0.1), "m", "f", GenerationSettings())
    with pytest.raises(InputError, match="The reviewer name has 201 characters; it can have at most 200."):
        workspace.add_note("r" * 201, "ok", run_id=run_id)
    with pytest.raises(InputError, match="at most 200"):
        workspace.set_reviewer("browser", "r" * 201)
    workspace.set_reviewer("browser", "r" * 200)
    assert workspace.reviewer("browser") == "r" * 200


def test_a_byte_order_mark_is_accepted(workspace):
    text = jsonl(version(), run())
    assert workspace.import_jsonl(b"\xef\xbb\xbf" + text.encode()).added["run"] == 1
    assert workspace.import_jsonl("\ufeff" + text).skipped == 2


def test_line_separators_inside_text_are_text_not_line_ends(workspace):
    """An export writes U+2028, U+0085 and form feeds as they are: they must not split a record."""
    text = "a\u2028b\x85c\x0cd\u2029e"
    workspace.import_jsonl(jsonl(version(text=text), run(output=text)))
    other = workspace.export_jsonl()
    assert "\u2028" in other and "\x85" in other and workspace.import_jsonl(other).skipped == 2


def test_an_unwritable_workspace_refuses_an_import_in_one_line(tmp_path, monkeypatch):
    from faults import read_only

    from workspace import store

    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "workspace.sqlite3"
    Workspace.open(f"sqlite:///{path}").close()
    with read_only(folder):
        opened = Workspace.open(f"sqlite:///{path}")
        try:
            with pytest.raises(InputError) as raised:
                opened.import_jsonl(jsonl(version(), run()))
            assert str(raised.value) == (
                f"The workspace database {path} cannot be written (it or its folder {folder} is read-only); "
                "make them writable and import again."
            )
            monkeypatch.setattr(
                store, "is_read_only", lambda engine: False
            )  # as if it became read-only later
            with pytest.raises(InputError) as raised:
                opened.import_jsonl(jsonl(version(), run()))
            assert str(raised.value).startswith(f"The workspace database {path} could not be written (")
            assert len(str(raised.value).splitlines()) == 1
            assert opened.runs() == []
        finally:
            opened.close()


def _cli_import(path: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workspace", "import", str(path)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00"])
def test_command_line_import_of_an_out_of_range_date_is_one_line(tmp_path, when):
    path = tmp_path / "dates.jsonl"
    path.write_text(jsonl(version(), run(created_at=when)), encoding="utf-8")
    done = _cli_import(path, {"GEMMA_WORKBENCH_DATA": str(tmp_path / "data")})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"error: {path}: nothing was imported. Line 2 (run, id 1): created_at: should be a date and time "
        f"between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z once moved to UTC, not {when}.\n"
    )


def test_command_line_import_into_a_read_only_workspace_is_one_line(tmp_path):
    from faults import read_only

    folder = tmp_path / "data"
    folder.mkdir()
    Workspace.open(f"sqlite:///{folder / 'workspace.sqlite3'}").close()
    path = tmp_path / "ok.jsonl"
    path.write_text(jsonl(version(), run()), encoding="utf-8")
    with read_only(folder):
        done = _cli_import(path, {"GEMMA_WORKBENCH_DATA": str(folder)})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"error: {path}: nothing was imported. The workspace database {folder / 'workspace.sqlite3'} cannot "
        f"be written (it or its folder {folder} is read-only); make them writable and import again.\n"
    )
