# ruff: noqa: I001
"""Keras' own int8 weight quantization for generation: speed, memory and token agreement.

    .venv/bin/python bench/bench_quantize.py [--mode int8] [--new-tokens 32] [--repeats 3]

Loads the embedded model in bfloat16 only, generates greedily for every sample prompt and
times warm decoding (64 new tokens on `fewshot-mistake`); then quantizes the backbone in place
with ``backbone.quantize(mode)`` (Keras quantizes the transformer's dense layers and the tied
embedding, inputs per token at run time) and repeats both on the same prompts, in the same
process. Prints decode tokens/s before and after (the ratio), the quantization's time and the
resident memory (VmRSS, and the high-water mark VmHWM), and how many outputs are identical,
with the first differing outputs. The workbench offers a precision only if its outputs agree.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import salience  # noqa: E402,F401  (configures Keras and TensorFlow before they load)
import tensorflow as tf  # noqa: E402

from salience.core.types import GenerationSettings  # noqa: E402
from salience.model.forward import GemmaForward  # noqa: E402
from salience.model.loader import load_model  # noqa: E402
from salience.prompts.samples import find_sample, load_samples  # noqa: E402

DECODE_TOKENS = 64


def memory() -> str:
    """VmRSS and VmHWM of this process, in GiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 2**20
    return f"RSS {fields['VmRSS']:.2f} GiB, peak {fields['VmHWM']:.2f} GiB"


def outputs_and_speed(model, prompts: list[str], new_tokens: int, repeats: int) -> tuple[list[str], float]:
    """Greedy outputs of ``prompts`` and the median warm decode speed (tokens/s)."""
    settings = GenerationSettings(max_new_tokens=new_tokens)
    texts = [model.generate(prompt, settings).text for prompt in prompts]
    decode = GenerationSettings(max_new_tokens=DECODE_TOKENS)
    prompt = find_sample("fewshot-mistake").render().text
    model.generate(prompt, decode)  # warm
    speed = statistics.median(model.generate(prompt, decode).tokens_per_second for _ in range(repeats))
    return texts, speed


def quantized_forward(backbone, family: str, mode: str) -> GemmaForward:
    """The forward passes over ``backbone`` after Keras quantizes it in place."""
    backbone.quantize(mode)
    forward = GemmaForward(backbone, family)
    table = backbone.token_embedding  # quantized: its call gathers and de-scales the rows

    def embed(token_ids):
        return tf.cast(table(token_ids), tf.float32) * forward._embedding_scale

    forward.embed = embed
    return forward


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="int8", choices=["int8", "int4"])
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = load_model("embedded", precision="bfloat16", only=True)
    print(f"loaded bfloat16 only: {memory()}", flush=True)
    prompts = [sample.render().text for sample in load_samples()]
    before, before_speed = outputs_and_speed(model, prompts, args.new_tokens, args.repeats)
    print(f"bfloat16: decode {before_speed:.1f} tok/s; {memory()}", flush=True)
    started = time.perf_counter()
    backbone = model.forward_for("bfloat16").backbone
    model._forwards["bfloat16"] = quantized_forward(backbone, model.family, args.mode)
    print(f"quantize('{args.mode}') took {time.perf_counter() - started:.1f} s; {memory()}", flush=True)
    after, after_speed = outputs_and_speed(model, prompts, args.new_tokens, args.repeats)
    print(f"{args.mode}: decode {after_speed:.1f} tok/s ({after_speed / before_speed:.2f}x); {memory()}")
    same = sum(a == b for a, b in zip(before, after, strict=True))
    print(f"identical outputs ({args.new_tokens} new tokens): {same} of {len(prompts)}")
    for a, b in zip(before, after, strict=True):
        if a != b:
            print(f"  bfloat16:   {a[:72]!r}\n  {args.mode}: {b[:72]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
