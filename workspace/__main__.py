"""`python -m workspace upgrade | export [FILE] | import FILE`: manage the workspace database.

Uses $DATABASE_URL, or the SQLite file under $GEMMA_WORKBENCH_DATA.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from salience.errors import WorkbenchError
from workspace.store import Workspace


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
        if opened.notice:
            print(opened.notice, file=sys.stderr)
        if args.command == "upgrade":
            print(f"{opened.url} is at the newest schema.")
        elif args.command == "export":
            text = opened.export_jsonl(notes_only=args.notes_only)
            if args.file:
                Path(args.file).write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
        else:
            counts = opened.import_jsonl(Path(args.file).read_bytes())
            print(", ".join(f"{n} {kind}" for kind, n in counts.items()))
    except (WorkbenchError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
