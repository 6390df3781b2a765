# ruff: noqa: I001
"""Engine benchmark: salience latency and decode speed against baselines measured in the same run.

    .venv/bin/python bench/bench_engine.py [--lengths 128 512 1024] [--repeats 3]

Salience: ours (hidden states gathered at the target before the 262k-word projection,
bucketed shapes, bfloat16 compute) vs a LIT-style baseline (per-token loss over
full-vocabulary logits at every position, masked to the target, gradient to the
embeddings; float32 like our exact mode) on the same prompt, warm.
Decode: our cached decoder vs plain `CausalLM.generate` (greedy), warm, 64 new tokens.
"""

from __future__ import annotations

import argparse
import statistics
import sys
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-decode", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    model = load_model("embedded")
    print(f"model loaded in {time.perf_counter() - started:.1f}s: {model.name}", flush=True)
    if not args.skip_decode:
        bench_decode(model, args.repeats)
    bench_salience(model, args.lengths, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
