# ruff: noqa: I001
"""The engine on Ray Serve against the model in-process, same run, same machine.

    flock /tmp/heavy.lock .venv/bin/python bench/bench_serve.py [--model embedded] [--repeats 10]

Measures, for the embedded Gemma 3 270M at bfloat16 on the `fewshot-mistake` sample:
1. the latency the HTTP hop adds to one explain (Grad L2 + Grad·Input): the median through
   `RemoteModel.salience` (1 replica, given every core) less the median time the replica itself
   computed (`SalienceResult.seconds`), and against the median in-process `LanguageModel.salience`;
2. peak memory (VmHWM) of one replica, which keeps only the precision it serves, against an
   in-process model that keeps both (a fresh process each);
3. throughput of 16 concurrent explain requests with 1 and with 2 replicas;
4. an evaluation's generation fanned out over the replicas: 16 rows × 16 new tokens,
   `RemoteModel.generate_batch` (one request per replica at once) with 1 and with 2 replicas.
Each deployment is started fresh (`python -m salience serve`) and warmed by one request first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import salience  # noqa: E402,F401  (configures Keras and TensorFlow before they load)

from engine_server import running_engine  # noqa: E402
from salience.serving.remote import connect  # noqa: E402
from salience.prompts.samples import find_sample  # noqa: E402
from salience.prompts.templates import render  # noqa: E402
from salience.core.types import GenerationSettings  # noqa: E402

PRECISION = "bfloat16"
ROW_SETTINGS = GenerationSettings(max_new_tokens=16)
PEAK_CODE = """
import resource, sys
sys.path.insert(0, {root!r})
import salience
from salience.model.loader import load_model
from salience.prompts.samples import find_sample
from salience.core.types import GenerationSettings
model = load_model({spec!r})
prompt = find_sample("fewshot-mistake").render().text
generation = model.generate(prompt, GenerationSettings(max_new_tokens=16), precision="bfloat16")
model.salience(prompt, generation.text or " ok", precision="bfloat16")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _median_seconds(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def _peak_gib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 2**20


def _in_process_peak_gib(spec: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PEAK_CODE.format(root=str(ROOT), spec=spec)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return int(out.stdout.split()[-1]) / 2**20


def _throughput(url: str, prompt: str, target: str, requests: int = 16) -> float:
    def explain(_: int):
        return connect(url).salience(prompt, target)

    began = time.perf_counter()
    with ThreadPoolExecutor(requests) as pool:
        list(pool.map(explain, range(requests)))
    return requests / (time.perf_counter() - began)


def _rows(count: int) -> list[str]:
    sample = find_sample("fewshot-mistake")
    items = ["Quiche Lorraine", "Chocolate fondant", "Chicken satay", "Mushroom risotto"]
    return [
        render(sample.template, {**sample.variables, "menu_item": f"{items[i % len(items)]} #{i}"}).text
        for i in range(count)
    ]


def _fan_out(url: str, rows: list[str]) -> float:
    model = connect(url)
    began = time.perf_counter()
    model.generate_batch(rows, ROW_SETTINGS, batch_size=8)
    return len(rows) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    from salience.model.loader import load_model

    prompt = find_sample("fewshot-mistake").render().text
    model = load_model(args.model)
    target = model.generate(prompt, GenerationSettings(max_new_tokens=16), precision=PRECISION).text or " ok"
    model.salience(prompt, target, precision=PRECISION)  # traced
    in_process = _median_seconds(lambda: model.salience(prompt, target, precision=PRECISION), args.repeats)
    rows = _rows(16)
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"}
    for replicas in (1, 2):
        cores = os.cpu_count() or 1
        with running_engine(
            args.model,
            replicas=replicas,
            precision=PRECISION,
            num_cpus=max(1, cores // replicas),
            timeout=900,
        ) as engine:
            remote = connect(engine.url)
            remote.salience(prompt, target)  # warm (each replica also warmed itself at start)
            remote.generate_batch(rows[:2], ROW_SETTINGS, batch_size=1)
            if replicas == 1:
                through = _median_seconds(
                    lambda engine_model=remote: engine_model.salience(prompt, target), args.repeats
                )
                inside = statistics.median(
                    remote.salience(prompt, target).seconds for _ in range(args.repeats)
                )
                results["explain_inside_replica_ms"] = round(inside * 1000, 1)
                results["http_hop_only_ms"] = round((through - inside) * 1000, 1)
                results["explain_in_process_ms"] = round(in_process * 1000, 1)
                results["explain_engine_ms"] = round(through * 1000, 1)
                results["engine_minus_in_process_ms"] = round((through - in_process) * 1000, 1)
                results["replica_peak_gib"] = round(_peak_gib(next(iter(engine.replica_pids(1)))), 2)
            results[f"explain_16_concurrent_per_s_{replicas}"] = round(
                _throughput(engine.url, prompt, target), 2
            )
            results[f"evaluation_rows_per_s_{replicas}"] = round(_fan_out(engine.url, rows), 2)
    results["in_process_peak_gib_both_precisions"] = round(_in_process_peak_gib(args.model), 2)
    results["explain_throughput_ratio_2_vs_1"] = round(
        results["explain_16_concurrent_per_s_2"] / results["explain_16_concurrent_per_s_1"], 2
    )
    results["evaluation_ratio_2_vs_1"] = round(
        results["evaluation_rows_per_s_2"] / results["evaluation_rows_per_s_1"], 2
    )
    results["memory_ratio_replica_vs_in_process"] = round(
        results["replica_peak_gib"] / results["in_process_peak_gib_both_precisions"], 2
    )
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
