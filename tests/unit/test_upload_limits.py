"""Uploads are refused by size before any parsing: every upload box names its limit (at most the
server's `server.maxUploadSize`), and the parsers refuse larger bytes with one clear line."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from salience.core.errors import InputError
from salience.evaluation.runs import MAX_FILE_BYTES, parse_data
from salience.prompts.samples import parse_jsonl
from workspace.store import MAX_IMPORT_BYTES, Workspace

ROOT = Path(__file__).resolve().parents[2]
FIFTY_MB = b"\xff" * 50_000_000  # not even UTF-8: a parser that decoded it first would say so


def upload_boxes() -> list[tuple[str, ast.Call]]:
    found = []
    for path in [ROOT / "app.py", *ROOT.glob("app_pages/*.py"), *ROOT.glob("components/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "file_uploader":
                found.append((path.name, node))
    return found


def test_every_upload_box_has_a_limit_within_the_servers():
    server_mb = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
    assert server_mb <= 25
    boxes = upload_boxes()
    assert len(boxes) >= 3
    for name, call in boxes:
        limits = [k.value for k in call.keywords if k.arg == "max_upload_size"]
        assert limits, f"an upload box in {name} has no max_upload_size"
    assert server_mb >= MAX_IMPORT_BYTES // 1_000_000


def test_a_50_mb_prompt_file_is_refused_before_parsing():
    with pytest.raises(InputError, match="larger than 5 MB"):
        parse_jsonl(FIFTY_MB)


def test_a_data_set_over_the_limit_is_refused_before_parsing():
    with pytest.raises(InputError, match=f"larger than {MAX_FILE_BYTES // 1_000_000} MB"):
        parse_data(FIFTY_MB + b"\xff", "The file 'big.csv'")


def test_a_50_mb_workspace_import_is_refused_before_parsing(tmp_path):
    opened = Workspace.open(f"sqlite:///{tmp_path / 'workspace.sqlite3'}")
    try:
        with pytest.raises(InputError, match="50.0 MB, over the 25 MB an import takes"):
            opened.import_jsonl(FIFTY_MB)
    finally:
        opened.close()
