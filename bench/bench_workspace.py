"""Workspace benchmark: what autosave costs per Generate + explanation, against a baseline
measured in the same run (the same records appended as JSON lines to a file, fsynced).

    .venv/bin/python bench/bench_workspace.py [--runs 200] [--tokens 512] [--database-url URL]

One "autosave" = a template version (deduplicated), a run and a salience result with three
score arrays over ``--tokens`` tokens, each in its own transaction, plus the browser state.
Also times the history page's search over all runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from salience.core.types import Generation, GenerationSettings, SalienceResult  # noqa: E402
from workspace.store import RunFilter, Workspace  # noqa: E402

SETTINGS = GenerationSettings(max_new_tokens=48, stop_sequences=("\n\n",))


def fake_result(tokens: int, seed: int) -> tuple[str, SalienceResult]:
    rng = np.random.default_rng(seed)
    words = [f" w{rng.integers(1000)}" for _ in range(tokens)]
    prompt = "".join(words[:-8])
    text = "".join(words)
    offsets, position = [(0, 0)], 0
    for word in words:
        offsets.append((position, position + len(word)))
        position += len(word)
    scores = {
        m: rng.random(len(offsets)).astype(np.float32)
        for m in ("grad_l2", "grad_dot_input", "integrated_gradients")
    }
    result = SalienceResult(
        text, len(prompt), tuple(["<bos>", *words]), tuple(offsets), (len(offsets) - 8, len(offsets)), scores
    )
    return prompt, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temp dir")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    workspace = Workspace.open(args.database_url or f"sqlite:///{folder / 'bench.sqlite3'}")
    samples = [fake_result(args.tokens, seed) for seed in range(args.runs)]

    ours, baseline = [], []
    for index, (prompt, result) in enumerate(samples):
        generation = Generation(
            prompt, result.text[len(prompt) :], tuple(range(8)), "stop_sequence", 1.0, 0.2
        )
        began = time.perf_counter()
        version = workspace.save_template_version("bench", "Q: {x}", {"x": str(index % 10)})
        run = workspace.record_run(generation, "embedded", "bfloat16", SETTINGS, {"x": str(index)}, version)
        workspace.record_salience(result, "embedded", "bfloat16", prompt, generation.text, None, run)
        workspace.save_state("bench-browser", {"template": "Q: {x}", "n": index})
        ours.append(time.perf_counter() - began)

        began = time.perf_counter()
        with open(folder / "baseline.jsonl", "a", encoding="utf-8") as file:
            for record in (
                {"template": "Q: {x}", "variables": {"x": str(index % 10)}},
                {
                    "prompt": generation.prompt,
                    "output": generation.text,
                    "settings": list(SETTINGS.stop_sequences),
                },
                result.to_json(),
                {"state": {"template": "Q: {x}", "n": index}},
            ):
                file.write(json.dumps(record) + "\n")
                file.flush()
                os.fsync(file.fileno())
        baseline.append(time.perf_counter() - began)

    began = time.perf_counter()
    found = workspace.runs(RunFilter(text="w1", limit=500))
    search = time.perf_counter() - began
    median_ours, median_base = statistics.median(ours), statistics.median(baseline)
    print(f"database: {workspace.url}")
    print(f"autosave of one Generate + explanation ({args.tokens} tokens, 3 methods), median of {args.runs}:")
    print(
        f"  workspace   {median_ours * 1000:7.2f} ms  (p95 {sorted(ours)[int(0.95 * len(ours))] * 1000:.2f} ms)"
    )
    print(f"  JSONL+fsync {median_base * 1000:7.2f} ms  (baseline)")
    print(f"  ratio       {median_ours / median_base:7.2f}x the baseline")
    print(f"history search over {args.runs} runs: {search * 1000:.1f} ms ({len(found)} matches)")
    workspace.close()


if __name__ == "__main__":
    main()
