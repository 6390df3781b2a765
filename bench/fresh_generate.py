"""One fresh process: load a model, generate greedily, print what it measured as one JSON line.

    python bench/fresh_generate.py ours  PROMPT_FILE NEW_TOKENS [--precision bfloat16|float32]
    python bench/fresh_generate.py llama PROMPT_FILE NEW_TOKENS --gguf FILE [--threads 2]

Run by ``bench/bench_engine.py --llama-python`` for both engines in the same run: ``ours`` with
this project's interpreter, ``llama`` with an interpreter that has llama-cpp-python (a
benchmark-only dependency; this script imports nothing of the project on that side). Measures
``load_s`` (imports and loading), ``first_s`` (the first generation's time to its first token:
prefill plus any graph building), ``prefill_s`` and ``decode_tps`` (a second, warm generation:
time to its first token, and tokens/s after it), ``prompt_tokens``, and ``peak_gib`` (VmHWM at
the end: the process's peak resident memory) and ``weight_bytes`` (the weights' size in
memory: what each decoded token reads).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()


def peak_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def ours(prompt: str, new_tokens: int, precision: str) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import numpy as np
    from ml_dtypes import bfloat16  # noqa: F401  (registers "bfloat16" with NumPy)

    import salience  # noqa: F401  (configures Keras and TensorFlow before they load)
    from salience.core.types import GenerationSettings
    from salience.model.loader import load_model

    model = load_model("embedded", precision=precision, only=True)
    loaded = time.perf_counter() - STARTED
    backbone = model.forward_for(precision).backbone
    weight_bytes = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in backbone.weights)
    settings = GenerationSettings(max_new_tokens=new_tokens)
    first = model.generate(prompt, settings)
    warm = model.generate(prompt, settings)
    assert warm.text == first.text
    return {
        "load_s": loaded,
        "first_s": first.first_token_seconds,
        "prefill_s": warm.first_token_seconds,
        "decode_tps": warm.tokens_per_second,
        "prompt_tokens": len(model.tokenize(prompt)),
        "new_tokens": len(warm.token_ids),
        "weight_bytes": weight_bytes,  # all read per token: the output projection is the tied table
    }


def llama(prompt: str, new_tokens: int, gguf: str, threads: int) -> dict:
    from llama_cpp import Llama

    model = Llama(model_path=gguf, n_ctx=2048, n_threads=threads, n_batch=512, verbose=False)
    loaded = time.perf_counter() - STARTED
    tokens = model.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)

    def generate() -> tuple[float, float, int]:
        model.reset()
        started = time.perf_counter()
        first_at, count = 0.0, 0
        for _ in model.generate(tokens, top_k=1, temp=0.0, reset=True):
            count += 1
            if count == 1:
                first_at = time.perf_counter() - started
            if count == new_tokens:
                break
        total = time.perf_counter() - started
        return first_at, total, count

    first_s, _, _ = generate()
    prefill_s, total, count = generate()
    return {
        "load_s": loaded,
        "first_s": first_s,
        "prefill_s": prefill_s,
        "decode_tps": (count - 1) / max(total - prefill_s, 1e-9),
        "prompt_tokens": len(tokens),
        "new_tokens": count,
        "weight_bytes": Path(gguf).stat().st_size,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", choices=["ours", "llama"])
    parser.add_argument("prompt_file")
    parser.add_argument("new_tokens", type=int)
    parser.add_argument("--precision", default="bfloat16")
    parser.add_argument("--gguf")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    prompt = Path(args.prompt_file).read_text(encoding="utf-8")
    if args.engine == "ours":
        found = ours(prompt, args.new_tokens, args.precision)
    else:
        found = llama(prompt, args.new_tokens, args.gguf, args.threads)
    found["wall_s"] = time.perf_counter() - STARTED
    found["peak_gib"] = peak_gib()
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
