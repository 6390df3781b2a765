# ruff: noqa: I001
"""Batched generation benchmark: rows per second, batch of B against one at a time, same run.

    flock /tmp/heavy.lock .venv/bin/python bench/bench_generation.py \
        [--rows 32] [--new-tokens 32] [--batch-size 8] [--precisions bfloat16 float32]

Prompts: the `fewshot-mistake` sample filled with the menu evaluation set's rows
(data/eval/menu_recommendations.csv), greedy, no stop sequences, so every row asks for
the same number of new tokens (a row may still end early at its end of text). Both
ways are warmed up first (graphs traced), then timed on the same prompts:
`LanguageModel.generate` row after row, `LanguageModel.generate_batch` (the
template's shared start prefilled once per batch), and the same without sharing it.

    flock /tmp/heavy.lock .venv/bin/python bench/bench_generation.py --agreement \
        [--new-tokens 24] [--precisions bfloat16 float32] [--batched-bfloat16]

``--agreement``: the shipped sample prompts and four held-out prompts (6 to ~200 tokens),
greedy; each precision's `generate` (the workbench's path) against `generate_batch` at batch
sizes 1, 3 and 8: rows token-identical, tokens agreeing (same token at the same step, over
``generate``'s tokens) and seconds. ``--batched-bfloat16`` also times the old way, bfloat16
rows decoded in batches (`BATCHED_PRECISIONS` widened for the run), to show what it changed.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import salience  # noqa: E402,F401  (configures Keras and TensorFlow before they load)

from salience.model.batch_generation import generate_batch  # noqa: E402
from salience.model.loader import load_model  # noqa: E402
from salience.prompts.samples import find_sample  # noqa: E402
from salience.prompts.templates import render  # noqa: E402
from salience.core.types import GenerationSettings  # noqa: E402

DATA = ROOT / "data" / "eval" / "menu_recommendations.csv"


def prompts(count: int) -> list[str]:
    """``count`` prompts: the sample's template over the evaluation rows (cycled if fewer)."""
    sample = find_sample("fewshot-mistake")
    with DATA.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    texts = []
    for index in range(count):
        values = dict(sample.variables)
        values.update({k: v for k, v in rows[index % len(rows)].items() if k in values})
        texts.append(render(sample.template, values).text)
    return texts


def measure(model, texts, settings, precision, batch_size):
    model.generate(texts[0], settings, precision=precision)  # warm: trace the graphs
    model.generate_batch(texts[:batch_size], settings, precision=precision, batch_size=batch_size)
    began = time.perf_counter()
    alone = [model.generate(text, settings, precision=precision) for text in texts]
    alone_seconds = time.perf_counter() - began
    began = time.perf_counter()
    batched = model.generate_batch(texts, settings, precision=precision, batch_size=batch_size)
    batched_seconds = time.perf_counter() - began
    began = time.perf_counter()
    unshared = generate_batch(model, texts, settings, precision, batch_size=batch_size, share_prefix=False)
    unshared_seconds = time.perf_counter() - began
    same = sum(a.token_ids == b.token_ids for a, b in zip(alone, batched))
    same_unshared = sum(a.token_ids == b.token_ids for a, b in zip(alone, unshared))
    return {
        "precision": precision,
        "rows": len(texts),
        "batch_size": batch_size,
        "new_tokens": sum(len(g.token_ids) for g in alone),
        "prompt_tokens_mean": round(sum(len(model.tokenize(t)) for t in texts) / len(texts), 1),
        "one_at_a_time_seconds": round(alone_seconds, 2),
        "batched_seconds": round(batched_seconds, 2),
        "one_at_a_time_rows_per_second": round(len(texts) / alone_seconds, 3),
        "batched_rows_per_second": round(len(texts) / batched_seconds, 3),
        "ratio": round(alone_seconds / batched_seconds, 2),
        "rows_identical": same,
        "unshared_seconds": round(unshared_seconds, 2),
        "unshared_rows_per_second": round(len(texts) / unshared_seconds, 3),
        "unshared_ratio": round(alone_seconds / unshared_seconds, 2),
        "unshared_rows_identical": same_unshared,
    }


HELD_OUT = [
    "The capital of France is",
    "Keras is a",
    "Write a short poem about the sea.\n",
    " ".join(["The history of the city began long ago when traders settled by the river."] * 12)
    + " In summary,",
]


def agreement_prompts() -> list[str]:
    from salience.prompts.samples import load_samples

    return [render(v.template, dict(v.variables)).text for v in load_samples()] + HELD_OUT


def agreement(model, texts, settings, precision, batched_bfloat16=False) -> list[dict]:
    """Rows and tokens of ``generate_batch`` at batch sizes 1, 3 and 8 that equal ``generate``'s."""
    import salience.batch_generation as batching

    model.generate(texts[0], settings, precision=precision)  # warm: trace the graphs
    began = time.perf_counter()
    alone = [model.generate(text, settings, precision=precision).token_ids for text in texts]
    rows = [{"precision": precision, "way": "generate", "batch_size": 1, "seconds": _since(began)}]
    ways = [("generate_batch", batching.BATCHED_PRECISIONS)]
    if batched_bfloat16 and precision == "bfloat16":
        ways.append(("generate_batch, bfloat16 batched (old)", (*batching.BATCHED_PRECISIONS, "bfloat16")))
    saved = batching.BATCHED_PRECISIONS
    try:
        for way, batched in ways:
            batching.BATCHED_PRECISIONS = batched
            generate_batch(model, texts[:3], settings, precision, batch_size=3)  # warm
            for size in (1, 3, 8):
                began = time.perf_counter()
                got = [
                    g.token_ids for g in generate_batch(model, texts, settings, precision, batch_size=size)
                ]
                seconds = _since(began)
                same = sum(a == b for a, b in zip(alone, got))
                tokens = sum(len(a) for a in alone)
                agree = sum(x == y for a, b in zip(alone, got) for x, y in zip(a, b))
                rows.append(
                    {
                        "precision": precision,
                        "way": way,
                        "batch_size": size,
                        "rows_identical": f"{same}/{len(texts)}",
                        "differing_rows": [i + 1 for i, (a, b) in enumerate(zip(alone, got)) if a != b],
                        "token_agreement": round(agree / max(tokens, 1), 4),
                        "seconds": seconds,
                    }
                )
    finally:
        batching.BATCHED_PRECISIONS = saved
    return rows


def _since(began: float) -> float:
    return round(time.perf_counter() - began, 1)


def main_agreement(args) -> None:
    model = load_model("embedded")
    texts = agreement_prompts()
    settings = GenerationSettings(max_new_tokens=args.new_tokens)
    rows = [
        row for p in args.precisions for row in agreement(model, texts, settings, p, args.batched_bfloat16)
    ]
    if args.json:
        print(json.dumps({"model": model.name, "prompts": len(texts), "results": rows}, indent=2))
        return
    lengths = sorted(len(model.tokenize(t)) for t in texts)
    print(
        f"{model.name}: {len(texts)} prompts ({lengths[0]}-{lengths[-1]} tokens) x "
        f"{args.new_tokens} new tokens, greedy; against generate, the workbench's path"
    )
    for r in rows:
        if r["way"] == "generate":
            print(f"{r['precision']:>9} generate, one at a time: {r['seconds']} s")
            continue
        print(
            f"{r['precision']:>9} {r['way']} batch {r['batch_size']}: {r['rows_identical']} rows "
            f"identical, {r['token_agreement']:.1%} of tokens agree, {r['seconds']} s"
            + (f" (rows {r['differing_rows']} differ)" if r["differing_rows"] else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--precisions", nargs="+", default=["bfloat16"], choices=["bfloat16", "float32"])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--agreement", action="store_true", help="token agreement across batch sizes 1, 3, 8")
    parser.add_argument(
        "--batched-bfloat16",
        action="store_true",
        help="with --agreement: also bfloat16 batched (the old way)",
    )
    args = parser.parse_args()
    if args.agreement:
        main_agreement(args)
        return
    began = time.perf_counter()
    model = load_model("embedded")
    load_seconds = time.perf_counter() - began
    texts = prompts(args.rows)
    settings = GenerationSettings(max_new_tokens=args.new_tokens)
    results = [measure(model, texts, settings, p, args.batch_size) for p in args.precisions]
    report = {
        "model": model.name,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "load_seconds": round(load_seconds, 1),
        "results": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{model.name}: {args.rows} rows x {args.new_tokens} new tokens, greedy (load {load_seconds:.1f} s)"
    )
    for r in results:
        print(
            f"{r['precision']:>9}: one at a time {r['one_at_a_time_rows_per_second']:.2f} rows/s "
            f"({r['one_at_a_time_seconds']:.1f} s), batch {r['batch_size']} "
            f"{r['batched_rows_per_second']:.2f} rows/s ({r['batched_seconds']:.1f} s): "
            f"{r['ratio']:.2f}x; {r['rows_identical']}/{r['rows']} rows token-identical, "
            f"{r['new_tokens']} tokens, prompts {r['prompt_tokens_mean']} tokens on average"
        )
        print(
            f"{'':>9}  batch {r['batch_size']} without sharing the template's start: "
            f"{r['unshared_rows_per_second']:.2f} rows/s ({r['unshared_seconds']:.1f} s): "
            f"{r['unshared_ratio']:.2f}x; {r['unshared_rows_identical']}/{r['rows']} rows token-identical"
        )


if __name__ == "__main__":
    main()
