"""`python -m workspace upgrade | export [FILE] | import FILE`: manage the workspace database.

Uses $DATABASE_URL, or the SQLite file under $GEMMA_WORKBENCH_DATA.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from salience.core.errors import WorkbenchError
from workspace.database import is_read_only
from workspace.store import Workspace, import_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workspace", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("upgrade", help="create the database or migrate it to the newest schema")
    export = commands.add_parser("export", help="write the whole workspace as JSONL")
    export.add_argument("file", nargs="?", help="output file (default: standard output)")
    export.add_argument("--notes-only", action="store_true", help="only runs that have notes")
    load = commands.add_parser("import", help="add the records of a JSONL export")
    load.add_argument("file")
    args = parser.parse_args(argv)
    try:
        opened = Workspace.open()
        if opened.notice and not (args.command == "import" and is_read_only(opened.engine)):
            print(opened.notice, file=sys.stderr)  # (an import says why it cannot write, in one line)
        if args.command == "upgrade":
            print(f"{opened.url} is at the newest schema.")
        elif args.command == "export":
            _export(opened, args.file, args.notes_only)
        else:
            print(import_summary(opened.import_jsonl(Path(args.file).read_bytes())))
    except WorkbenchError as error:
        lines = str(error).splitlines() or [""]
        if args.command == "import":  # one line per bad row, under the file's name
            head = f"{args.file}: nothing was imported."
            lines = [f"{head} {lines[0]}"] if len(lines) == 1 else [head, *lines]
        print(f"error: {lines[0]}", *(f"  {line}" for line in lines[1:]), sep="\n", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
        return 2
    return 0


def _export(opened: Workspace, file: str | None, notes_only: bool) -> None:
    """Write record by record (the export is streamed from the database)."""
    lines = (
        json.dumps(record, ensure_ascii=False) + "\n"
        for record in opened.export_records(notes_only=notes_only)
    )
    if file is None:
        sys.stdout.writelines(lines)
        return
    with open(file, "w", encoding="utf-8") as out:
        out.writelines(lines)


if __name__ == "__main__":
    sys.exit(main())
