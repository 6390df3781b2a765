# ruff: noqa: I001
"""Start-up of fresh processes: this tree against a baseline revision, measured in the same run.

    flock /tmp/heavy.lock .venv/bin/python bench/bench_startup.py --baseline fb18bcc [--repeats 2]

For each tree (this one, and the ``--baseline`` revision checked out in a temporary git worktree
that shares this tree's ``.venv``), alternating, ``--repeats`` times:

- ``streamlit run serve.py`` on a fresh data folder, nobody visiting: seconds until
  ``/model-status`` says ``ready`` (the first Generate's and first click's graphs traced), until
  the start-up has **settled** (the background warm-up done too; a tree without that field
  counts ``ready`` as settled), and the server's peak resident memory (VmHWM) then;
- a fresh ``python -m salience explain`` of the ``fewshot-mistake`` sample's answer (the default
  method, ``--quiet``): wall seconds, and whether its printed report equals the baseline's.

Prints the medians and the ratios this tree / baseline. Targets (issue 25): the app ready
≤ 25 s, ``explain`` ≤ 8 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]
from app_server import ARTIFACTS, start_app  # noqa: E402  (the browser tests' server helper)

TARGET = " it has cheese in it, which you don't like."  # the sample's greedy answer, first sentence


def _server(tree: Path) -> dict[str, float]:
    ARTIFACTS.mkdir(exist_ok=True)  # start_app keeps the server's log there
    with tempfile.TemporaryDirectory() as data:
        began = time.monotonic()
        process, url = start_app(tree / "serve.py", env={"GEMMA_WORKBENCH_DATA": data}, cwd=tree)
        ready = settled = None
        try:
            while time.monotonic() - began < 300 and settled is None:
                try:
                    with urllib.request.urlopen(f"{url}/model-status", timeout=5) as answer:
                        status = json.load(answer)
                except (OSError, ValueError):
                    status = {}
                now = time.monotonic() - began
                if status.get("phase") == "ready":
                    ready = ready or now
                    if status.get("settled", True):
                        settled = now
                time.sleep(0.25)
            peak = _peak_gib(process.pid)
        finally:
            process.terminate()
            process.wait(30)
    if settled is None:
        raise RuntimeError(f"{tree}: the model was not ready within 300 s")
    return {"ready s": ready, "settled s": settled, "peak GiB": peak}


def _peak_gib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def _explain(tree: Path, prompt_file: Path) -> tuple[float, str]:
    began = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "salience",
            "explain",
            "--prompt-file",
            str(prompt_file),
            "--target",
            TARGET,
            "--quiet",
        ],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.monotonic() - began, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="a git revision to compare with")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from salience.prompts.samples import find_sample

    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch) / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "-q", "--detach", str(base), args.baseline], cwd=ROOT, check=True
        )
        (base / ".venv").symlink_to(ROOT / ".venv")
        prompt_file = Path(scratch) / "prompt.txt"
        prompt_file.write_text(find_sample("fewshot-mistake").render().text)
        results: dict[str, dict[str, list[float]]] = {"baseline": {}, "this tree": {}}
        reports: dict[str, str] = {}
        try:
            for _ in range(args.repeats):
                for name, tree in (("baseline", base), ("this tree", ROOT)):
                    measured = _server(tree)
                    measured["explain s"], reports[name] = _explain(tree, prompt_file)
                    for key, value in measured.items():
                        results[name].setdefault(key, []).append(value)
                    print(name, {key: round(value, 2) for key, value in measured.items()}, flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    print(f"\n| measure | baseline {args.baseline} | this tree | ratio |\n|---|---|---|---|")
    for key in results["this tree"]:
        before, after = (statistics.median(results[name][key]) for name in ("baseline", "this tree"))
        print(f"| {key} (median of {args.repeats}) | {before:.2f} | {after:.2f} | {after / before:.2f}× |")
    print(f"\nexplain's report equals the baseline's: {reports['baseline'] == reports['this tree']}")


if __name__ == "__main__":
    main()
