"""Many people at once: click → first colours, p95, with one session and with four, same run.

    .venv/bin/python bench/bench_sessions.py [--clicks 8] [--sessions 4] [--json out.json]

Each simulated reviewer clicks the output of a sample prompt and waits for the first colours
(the Deletion estimate at sentence granularity, computed on the page's own thread as the
workbench does); the page's quiet Deletion check then starts in the background on the app's own
`components.deletion.DeletionRunner`, the reviewer reads for 1–3 s (seeded) and clicks the next
prompt, which cancels the previous check as a new click does on the page. Timed: click →
colours. Two set-ups, each with one session alone and then ``--sessions`` at once:

- ``fair`` (the app): the model's `ModelLock` (a waiting click goes before background Deletion
  batches; each queue in arrival order) and a pool of `DELETION_WORKERS` Deletion workers;
- ``plain`` (before): a plain `threading.RLock` and one Deletion worker for every session.

Prints p50/p95 per set-up and the ratio p95(many) / p95(one) of the same set-up (target ≤ 3).
bfloat16, warm (every prompt's click and Deletion traced first).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.deletion import DELETION_WORKERS, DeletionRunner  # noqa: E402
from salience.attribution.methods import DEFAULT_METHOD, DELETION  # noqa: E402
from salience.core.types import GenerationSettings  # noqa: E402
from salience.model.loader import load_model  # noqa: E402
from salience.model.lock import ModelLock  # noqa: E402
from salience.prompts.samples import load_samples  # noqa: E402
from salience.prompts.segments import make_segments  # noqa: E402

PRECISION = "bfloat16"


def clicks(model, count: int) -> list[tuple[str, str, list[tuple[int, int]]]]:
    """(prompt, its greedy output, sentence token spans) for the first ``count`` sample prompts."""
    found = []
    for example in load_samples()[:count]:
        prompt = example.render().text
        settings = GenerationSettings(max_new_tokens=32, stop_sequences=("\n\n",))
        output = model.generate(prompt, settings, PRECISION).text or " yes"
        tokens, _ = model.tokenize_pair(prompt, output)
        segments = make_segments(prompt + output, tokens.offsets, "sentences", prompt_length=len(prompt))
        found.append((prompt, output, [(s.token_start, s.token_end) for s in segments]))
    return found


def colours(model, prompt: str, output: str, spans) -> None:
    model.salience(prompt, output, methods=(DEFAULT_METHOD,), precision=PRECISION, segments=spans)


def check(model, prompt: str, output: str, spans):
    """The page's quiet Deletion check, as `DeletionRunner` runs it."""

    def compute(progress, cancelled):
        return model.salience(
            prompt,
            output,
            methods=(DELETION,),
            precision=PRECISION,
            segments=spans,
            progress=progress,
            cancelled=cancelled,
        )

    return compute


def reviewer(model, runner, name: str, work, count: int, seed: int, seconds: list[float]) -> None:
    rng = random.Random(seed)
    time.sleep(rng.uniform(0, 1))  # people do not click in step
    for click in range(count):
        prompt, output, spans = work[(seed + click) % len(work)]
        began = time.perf_counter()
        colours(model, prompt, output, spans)
        seconds.append(time.perf_counter() - began)
        runner.request(name, (name, click), check(model, prompt, output, spans))  # cancels the last one
        time.sleep(rng.uniform(1, 3))


def session_run(model, work, sessions: int, count: int, fair: bool) -> list[float]:
    model._lock = ModelLock() if fair else threading.RLock()
    runner = DeletionRunner(DELETION_WORKERS if fair else 1)
    seconds: list[float] = []
    threads = [
        threading.Thread(target=reviewer, args=(model, runner, f"s{n}", work, count, 7 * n + 1, seconds))
        for n in range(sessions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for job in list(runner._jobs.values()):  # let the last checks stop before the next set-up
        job.cancel.set()
    runner._executor.shutdown(wait=True)
    return seconds


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=8, help="clicks per session")
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=4, help="sample prompts clicked in turn")
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args()

    model = load_model(precision=PRECISION)
    work = clicks(model, args.prompts)
    for prompt, output, spans in work:  # warm: trace every shape once
        colours(model, prompt, output, spans)
        check(model, prompt, output, spans)(None, None)
    report: dict = {}
    for setup in ("fair", "plain"):
        row = {}
        for sessions in (1, args.sessions):
            seconds = session_run(model, work, sessions, args.clicks, fair=setup == "fair")
            row[f"{sessions} p50 s"] = round(statistics.median(seconds), 3)
            row[f"{sessions} p95 s"] = round(p95(seconds), 3)
            print(setup, sessions, "sessions:", row, flush=True)
        row["p95 ratio"] = round(row[f"{args.sessions} p95 s"] / row["1 p95 s"], 2)
        report[setup] = row
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
