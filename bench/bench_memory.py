# ruff: noqa: I001
"""Peak memory of one process that serves the embedded model: today's default against one precision.

    flock /tmp/heavy.lock .venv/bin/python bench/bench_memory.py [--modes default-bf16 bf16-only ...]

Each mode runs in a fresh subprocess, which imports the engine, loads the embedded Gemma 3
270M, generates 32 tokens (greedy, the `fewshot-mistake` sample) and explains the output
with Grad L2 and Grad·Input, then reports its peak resident set size (`ru_maxrss`) and the
resident size after each step (`VmRSS`, `VmHWM` from /proc/self/status). Modes:

- ``default-bf16``: ``load_model()``'s default (both precisions on offer), run at bfloat16:
  the preset read in bfloat16, float32 read only if asked for (before session 10: the float32
  preset plus a bfloat16 copy);
- ``default-f32``: the default loaded for float32 (float32 read; bfloat16 only if asked for);
- ``bf16-only``: ``load_model(precision="bfloat16", only=True)``;
- ``f32-only``: ``load_model(precision="float32", only=True)``.

The ratio column compares each mode with ``default-bf16`` measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODES = {
    "default-bf16": ("bfloat16", False),
    "default-f32": ("float32", False),
    "bf16-only": ("bfloat16", True),
    "f32-only": ("float32", True),
}
BASELINE = "default-bf16"
GIB = 1024**3


def _status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in bytes."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


def child(mode: str) -> None:
    precision, only = MODES[mode]
    steps: list[dict] = []
    began = time.perf_counter()

    def mark(step: str) -> None:
        steps.append({"step": step, "seconds": round(time.perf_counter() - began, 1), **_status()})

    mark("start")
    import salience  # noqa: F401  (configures Keras and TensorFlow before they load)
    from salience.model.loader import import_tensorflow_quietly, load_model
    from salience.prompts.samples import find_sample
    from salience.core.types import GenerationSettings

    import_tensorflow_quietly()
    import keras_hub  # noqa: F401

    mark("import TensorFlow + KerasHub")
    model = load_model("embedded", precision=precision, only=only)
    mark("load")
    model.forward_for(precision)
    mark(f"forward at {precision}")
    prompt = find_sample("fewshot-mistake").render().text
    generation = model.generate(prompt, GenerationSettings(max_new_tokens=32), precision=precision)
    mark("generate 32 tokens")
    model.salience(prompt, generation.text, methods=("grad_l2", "grad_dot_input"), precision=precision)
    mark("salience (grad_l2, grad_dot_input)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"mode": mode, "peak": peak, "steps": steps, "tokens": list(generation.token_ids)}))


def run(mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode], capture_output=True, text=True, check=False, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=list(MODES))
    parser.add_argument("--child", choices=sorted(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--steps", action="store_true", help="also print the resident size after each step")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    modes = args.modes if BASELINE in args.modes else [BASELINE, *args.modes]
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    results = {mode: run(mode) for mode in modes}
    base = results[BASELINE]["peak"]
    print(f"\n| mode | peak RSS | vs {BASELINE} |\n|---|---|---|")
    for mode, result in results.items():
        print(f"| {mode} | {result['peak'] / GIB:.2f} GiB | {result['peak'] / base:.2f}× |")
    if args.steps:
        for mode, result in results.items():
            print(f"\n{mode}: step, seconds, VmRSS, VmHWM")
            for step in result["steps"]:
                print(
                    f"  {step['step']:<36} {step['seconds']:6.1f} s "
                    f"{step['VmRSS'] / GIB:5.2f} GiB {step['VmHWM'] / GIB:5.2f} GiB"
                )


if __name__ == "__main__":
    main()
