"""The Streamlit settings a reviewer depends on: no "magic" printing, no developer menu, no file
watcher, and no folder that switches Streamlit to its legacy page discovery."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [ROOT / "app.py", *sorted((ROOT / "app_pages").glob("*.py"))]
PROJECT = [*SCRIPTS, *sorted((ROOT / "components").glob("*.py"))]


def config() -> dict:
    return tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())


def test_config_turns_off_magic_developer_menu_and_watcher():
    settings = config()
    assert settings["runner"]["magicEnabled"] is False
    assert settings["runner"]["postScriptGC"] is False  # a full GC per fragment rerun starved the model
    assert settings["client"]["toolbarMode"] == "viewer"
    assert settings["client"]["showErrorDetails"] in ("type", "none")
    assert settings["server"]["fileWatcherType"] == "none"
    assert settings["browser"]["gatherUsageStats"] is False


def bare_expressions(path: Path, root: Path = ROOT) -> list[str]:
    """Expression statements Streamlit's magic would print (anything but a call, a docstring,
    ``...``, await or yield)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        for field in ("body", "orelse", "finalbody"):
            statements = getattr(node, field, None)
            if not isinstance(statements, list):
                continue
            for index, statement in enumerate(statements):
                if not isinstance(statement, ast.Expr):
                    continue
                value = statement.value
                if isinstance(value, ast.Call | ast.Await | ast.Yield | ast.YieldFrom):
                    continue
                if isinstance(value, ast.Constant) and (
                    value.value is Ellipsis or (index == 0 and isinstance(value.value, str))
                ):
                    continue
                found.append(f"{path.relative_to(root)}:{statement.lineno}: {ast.unparse(statement)[:80]}")
    return found


def test_no_statement_that_magic_would_print():
    assert SCRIPTS[1:], "no page scripts found under app_pages/"
    found = [line for path in PROJECT for line in bare_expressions(path)]
    assert not found, "expression statements that print when magic is on:\n" + "\n".join(found)


def test_the_scan_finds_a_conditional_expression_statement(tmp_path):
    script = tmp_path / "page.py"
    script.write_text('"""Doc."""\nimport streamlit as st\n\nst.markdown("a") if True else st.caption("b")\n')
    assert bare_expressions(script, tmp_path) == ["page.py:4: st.markdown('a') if True else st.caption('b')"]


def test_no_pages_folder_next_to_the_entry_point():
    # Its mere existence makes Streamlit run legacy page discovery until app.py has run once:
    # a deep link opened first after a restart then showed the wrong sidebar and layout.
    assert not (ROOT / "pages").exists(), "pages/ must not exist: the app's pages live in app_pages/"
