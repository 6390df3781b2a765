"""Faithfulness and speed of the salience methods on the embedded Gemma 3 270M.

    .venv/bin/python bench/bench_faithfulness.py [--cases 60] [--json out.json]

1. A generated suite of copy-from-context cases (salience/attribution/faithfulness.py) plus the
   sample prompts. Per method: top-1 = the fact used (ground truth by construction),
   top-1 = Deletion's top (the oracle, float32), Spearman with the Deletion scores,
   comprehensiveness (log p drop when deleting the method's top segment) against a
   random segment, and for signed methods how often the most *negative* segment is
   the fact used. Rankings are over the fact sentences of a copy case (the question
   and the "Answer:" cue are always essential and are left out) and over all
   sentences of a sample prompt.
2. A model-randomization check: scores from a Gemma 3 with re-initialised weights
   should not correlate with the trained model's.
3. Deletion over the sentences of fewshot-mistake: ours (shared prefix, batched)
   against a naive loop (one full forward with full-vocabulary logits per deleted
   segment) and against full batched forwards without prefix sharing, same precision.
4. Every method (the gradient ones, the attention-mask gradient, the Deletion estimate)
   on three sets at sentence, line and template-slot granularity: the copy suite, the
   sample prompts and a generated realistic set (salience/prompts/realistic.py), against the
   float32 Deletion oracle; and the time of one click (warm) against Grad L2's in the
   same run, on fewshot-mistake and a ~1,000-token prompt (``--click-speed``).

    .venv/bin/python bench/bench_faithfulness.py --estimates --cases 60 --realistic 36   # ~30 min
    .venv/bin/python bench/bench_faithfulness.py --click-speed                          # ~5 min
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import salience  # noqa: E402,F401
from salience.attribution.agreement import spearman  # noqa: E402
from salience.attribution.faithfulness import (  # noqa: E402
    CaseScores,
    copy_case_scores,
    make_cases,
    score_segments,
    summarize,
)
from salience.attribution.methods import DELETION, ESTIMATE_METHODS  # noqa: E402
from salience.attribution.occlusion import deletable_segments, deletion_scores  # noqa: E402
from salience.core.types import GenerationSettings  # noqa: E402
from salience.model.forward import GemmaForward  # noqa: E402
from salience.model.loader import load_model  # noqa: E402
from salience.prompts.realistic import make_realistic_cases  # noqa: E402
from salience.prompts.realistic import used_segment as realistic_used_segment  # noqa: E402
from salience.prompts.samples import load_samples  # noqa: E402
from salience.prompts.segments import make_segments  # noqa: E402

GRADIENT_METHODS = ("grad_l2", "grad_dot_input", "integrated_gradients")
CI_SUBSET = 12  # the real-model test runs the first cases of the same suite


def copy_suite(model, count: int, methods, **options) -> list[CaseScores]:
    scored = []
    for number, case in enumerate(make_cases(count, seed=0)):
        began = time.perf_counter()
        result = copy_case_scores(model, case, methods, **options)
        scored.append(result)
        print(
            f"  case {number + 1:2d}/{count} {case.kind:<8} {time.perf_counter() - began:5.1f}s "
            f"log p {result.extra['log_prob']:+.2f}",
            flush=True,
        )
    return scored


def sample_suite(
    model, methods, granularity: str = "sentences", targets: dict | None = None
) -> list[CaseScores]:
    """The sample prompts (reference target, else the greedy output; ``targets`` caches those)."""
    scored = []
    settings = GenerationSettings(max_new_tokens=32, stop_sequences=("\n\n",))
    targets = {} if targets is None else targets
    for example in load_samples():
        rendered = example.render()
        if example.name not in targets:
            targets[example.name] = example.target or model.generate(rendered.text, settings).text
        target = targets[example.name]
        if not target.strip():
            continue
        segments, scores, result = score_segments(
            model, rendered.text, target, (*methods, DELETION), granularity, slots=rendered.slots
        )
        scored.append(
            CaseScores(example.name, [(s.start, s.end) for s in segments], scores, scores[DELETION])
        )
    return scored


def realistic_suite(model, count: int, methods, granularity: str = "sentences") -> list[CaseScores]:
    """The generated realistic set; ``used`` is the line the target depends on (when a segment is
    exactly that line). Rankings are over every prompt segment, as Deletion's top is on the page."""
    scored = []
    for case in make_realistic_cases(count):
        began = time.perf_counter()
        rendered = case.variant.render()
        segments, scores, result = score_segments(
            model, rendered.text, case.target, (*methods, DELETION), granularity, slots=rendered.slots
        )
        scored.append(
            CaseScores(
                case.variant.name,
                [(s.start, s.end) for s in segments],
                scores,
                scores[DELETION],
                realistic_used_segment(case, segments) if granularity != "slots" else None,
            )
        )
        print(f"  {case.variant.name:<14} {granularity:<9} {time.perf_counter() - began:5.1f}s", flush=True)
    return scored


def table(rows, title: str) -> str:
    lines = [
        f"### {title}",
        "",
        "| method | cases | top-1 = fact used | most negative = fact used | largest abs = fact used "
        "| top-1 = Deletion's | Spearman with Deletion | drop at its top (nats) | drop at random |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda v: "–" if v is None else f"{v:.0%}"  # noqa: E731
    for row in rows:
        lines.append(
            f"| {row.method} | {row.cases} | {fmt(row.top1_truth)} | {fmt(row.most_negative_truth)} "
            f"| {fmt(row.magnitude_truth)} | {row.top1_oracle:.0%} | {row.spearman:+.2f} "
            f"| {row.comprehensiveness:+.2f} | {row.random_drop:+.2f} |"
        )
    return "\n".join(lines)


def randomization(model, count: int = 6) -> dict[str, float]:
    """Mean Spearman between segment scores of the trained and a re-initialised model."""
    trained = model.forward_for("float32")
    config = trained.backbone.get_config()
    tf.keras.utils.set_random_seed(1)
    random_backbone = type(trained.backbone).from_config(config)
    randomized = GemmaForward(random_backbone, trained.family)
    values: dict[str, list[float]] = {"grad_l2": [], "grad_dot_input": [], DELETION: []}
    for case in make_cases(count, seed=7):
        tokens, first = model.tokenize_pair(case.prompt, case.target)
        segments = [
            s
            for s in make_segments(
                case.prompt + case.target, tokens.offsets, "sentences", prompt_length=len(case.prompt)
            )
            if not s.in_target and s.token_start > 0
        ]
        spans = [(s.token_start, s.token_end) for s in segments]
        ids = list(tokens.ids)
        per_model = []
        for forward in (trained, randomized):
            _, gradient, embeddings = forward.gradients(ids, first, len(ids))
            l2 = np.linalg.norm(gradient, axis=-1)
            dot = np.sum(gradient * embeddings, axis=-1)
            deletion = deletion_scores(forward, ids, first, len(ids), spans)
            per_model.append(
                {
                    "grad_l2": [l2[a:b].sum() for a, b in spans],
                    "grad_dot_input": [dot[a:b].sum() for a, b in spans],
                    DELETION: list(deletion.scores),
                }
            )
        for name in values:
            rho = spearman(per_model[0][name], per_model[1][name])
            if rho is not None:
                values[name].append(rho)
    return {name: float(np.mean(v)) for name, v in values.items()}


def scale_probe(model, count: int = 12) -> dict[str, float]:
    """Why Grad·Input's sign misleads: scale the used fact's input embeddings (what g·e is the
    derivative of) and compare the change in log p with deleting the fact. Means over cases."""
    forward = model.forward_for("float32")
    changes: dict[str, list[float]] = {"x0.5": [], "x0.9": [], "x1.1": [], "x2": [], "deleted": [], "g·e": []}
    for case in make_cases(count, seed=0):
        tokens, first = model.tokenize_pair(case.prompt, case.target)
        ids = list(tokens.ids)
        segments = make_segments(
            case.prompt + case.target, tokens.offsets, "sentences", prompt_length=len(case.prompt)
        )
        start, end = case.fact_spans()[case.used]
        chosen = [s for s in segments if s.start <= start < s.end]
        if not chosen:
            continue
        a, b = chosen[0].token_start, chosen[0].token_end
        base, gradient, embeddings = forward.gradients(ids, first, len(ids))
        positions = tf.constant(np.arange(first, len(ids), dtype=np.int32))
        target = tf.constant(np.asarray(ids[first:], np.int32))
        weights = tf.ones(len(ids) - first)
        for name, factor in (("x0.5", 0.5), ("x0.9", 0.9), ("x1.1", 1.1), ("x2", 2.0)):
            scaled = embeddings.copy()
            scaled[a:b] *= factor
            value = forward._target_log_prob_graph(tf.constant(scaled[None]), positions, target, weights)
            changes[name].append(float(value[0]) - base)
        deleted = deletion_scores(forward, ids, first, len(ids), [(a, b)])
        changes["deleted"].append(-float(deleted.scores[0]))
        changes["g·e"].append(float(np.sum(gradient[a:b] * embeddings[a:b])))
    return {name: round(float(np.mean(values)), 3) for name, values in changes.items()}


def naive_deletion(forward, ids, target_start, target_end, spans, full_logits) -> np.ndarray:
    """One full forward per deleted segment, logits over the vocabulary at every position."""
    values = []
    target = ids[target_start:target_end]
    for start, end in [(target_start, target_start), *spans]:
        sequence = ids[:start] + ids[end:target_end]
        shift = end - start
        positions = np.arange(target_start - shift - 1, target_end - shift - 1, dtype=np.int32)
        values.append(float(full_logits(tf.constant([sequence], tf.int32), positions, target)))
    return values[0] - np.asarray(values[1:])


def speed(model, precision: str, repeats: int = 3) -> dict[str, float]:
    example = next(e for e in load_samples() if e.name == "fewshot-mistake")
    prompt = example.render().text
    output = model.generate(prompt, GenerationSettings(max_new_tokens=48, stop_sequences=("\n\n",))).text
    tokens, first = model.tokenize_pair(prompt, output)
    segments = make_segments(prompt + output, tokens.offsets, "sentences", prompt_length=len(prompt))
    spans = [(s.token_start, s.token_end) for s in segments]
    ids = list(tokens.ids)
    forward = model.forward_for(precision)

    @tf.function(
        input_signature=[
            tf.TensorSpec([1, None], tf.int32),
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None], tf.int32),
        ]
    )
    def full_logits(token_ids, positions, target):
        hidden = forward._hidden(forward.embed(token_ids))
        logits = forward._logits(hidden)[0]  # every position, as CausalLM's call computes
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        picked = tf.gather(log_probs, positions)
        return tf.reduce_sum(tf.gather(picked, target[:, None], axis=1, batch_dims=1))

    end = len(ids)
    runs = {
        "ours": lambda: deletion_scores(forward, ids, first, end, spans).scores,
        "no prefix sharing": lambda: (
            deletion_scores(forward, ids, first, end, spans, share_prefix=False).scores
        ),
        "naive loop": lambda: naive_deletion(
            forward, ids, first, end, deletable_segments(spans, first), full_logits
        ),
    }
    timings, results = {}, {}
    for name, run in runs.items():
        results[name] = run()  # trace
        seconds = []
        for _ in range(repeats):
            began = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - began)
        timings[name] = statistics.median(seconds)
    agree = float(np.max(np.abs(results["ours"] - results["naive loop"])))
    return {
        "tokens": len(ids),
        "target_tokens": len(ids) - first,
        "segments": len(deletable_segments(spans, first)),
        **{f"{name} s": round(value, 3) for name, value in timings.items()},
        "naive / ours": round(timings["naive loop"] / timings["ours"], 2),
        "no sharing / ours": round(timings["no prefix sharing"] / timings["ours"], 2),
        "max |ours − naive| nats": round(agree, 4),
    }


def long_prompt(lines: int = 56, seed: int = 3) -> tuple[str, str]:
    """A ~1,000-token prompt (store notes: facts and house rules, two a line) and its reference target."""
    import random

    from salience.prompts.realistic import FILLER_LINES, TIERS

    rng = random.Random(seed)
    facts = [fact for case in make_cases(lines, seed=seed) for fact in case.facts]
    body = [f"{rng.choice(facts)} {rng.choice([*FILLER_LINES, *facts])}" for _ in range(lines)]
    tier = rng.choice(TIERS)
    body.insert(lines // 3, f"{tier.capitalize()} members get 35% off.")
    question = f"Customer: I am a {tier} member. What discount do I get?\nAgent: You get"
    return "Store notes:\n" + "\n".join(body) + "\n\n" + question, " 35% off."


def click_speed(model, precision: str, repeats: int = 5) -> dict:
    """Seconds for one click (warm; the methods take turns, median of ``repeats``) per method, and
    the ratio to Grad L2 in the same run: fewshot-mistake (its greedy output, sentences) and a
    ~1,000-token prompt (lines; Deletion itself only on fewshot-mistake)."""
    from salience.attribution.estimate import deletion_estimate

    example = next(e for e in load_samples() if e.name == "fewshot-mistake")
    prompt = example.render().text
    output = model.generate(prompt, GenerationSettings(max_new_tokens=48, stop_sequences=("\n\n",))).text
    report = {}
    forward = model.forward_for(precision)
    for name, (text, target, granularity) in {
        "fewshot-mistake": (prompt, output, "sentences"),
        "long prompt": (*long_prompt(), "lines"),
    }.items():
        tokens, first = model.tokenize_pair(text, target)
        segments = make_segments(text + target, tokens.offsets, granularity, prompt_length=len(text))
        spans = [(s.token_start, s.token_end) for s in segments]
        ids = list(tokens.ids)

        def click(method, text=text, target=target, spans=spans):
            return lambda: model.salience(
                text, target, methods=(method,), precision=precision, segments=spans
            )

        runs = {method: click(method) for method in ("grad_l2", *ESTIMATE_METHODS)}
        runs["deletion_estimate, cue only"] = lambda ids=ids, first=first, spans=spans: deletion_estimate(
            forward, ids, first, len(ids), spans, confirmed=0
        )
        if name == "fewshot-mistake":
            runs[DELETION] = click(DELETION)
        for run in runs.values():
            run()  # trace
        seconds: dict[str, list[float]] = {method: [] for method in runs}
        for _ in range(repeats):
            for method, run in runs.items():
                began = time.perf_counter()
                run()
                seconds[method].append(time.perf_counter() - began)
        timings = {method: statistics.median(values) for method, values in seconds.items()}
        checked = runs["deletion_estimate"]().diagnostics["deletion_estimate"]["checked"]
        report[name] = {
            "tokens": len(tokens),
            "segments": len(deletable_segments(spans, first)),
            "deletion_estimate checked (token spans)": checked,
            **{f"{m} s": round(v, 3) for m, v in timings.items()},
            **{
                f"{m} / grad_l2": round(v / timings["grad_l2"], 2)
                for m, v in timings.items()
                if m != "grad_l2"
            },
        }
    return report


def estimates(model, args, report: dict) -> None:
    """Every method on the three sets (section 4 of the module docstring)."""
    methods = ("grad_l2", "grad_dot_input", *ESTIMATE_METHODS)
    granularities = args.granularities.split(",")
    sections = []
    if args.ig:
        methods = (*methods, "integrated_gradients")
    copy = copy_suite(model, args.cases, methods)
    sections.append((f"Copy-from-context, {len(copy)} cases, fact sentences", copy))
    targets: dict = {}
    for granularity in granularities:
        sections.append(
            (f"Sample prompts, {granularity}", sample_suite(model, methods, granularity, targets))
        )
        sections.append(
            (
                f"Realistic set ({args.realistic}), {granularity}",
                realistic_suite(model, args.realistic, methods, granularity),
            )
        )
    for title, cases in sections:
        rows = [summarize(cases, m) for m in (*methods, DELETION)]
        print()
        print(table(rows, title))
        report[title] = [row.__dict__ for row in rows]


def main() -> None:
    """Run the sections the options choose on the embedded model; print tables, write ``--json``."""
    args = _parser().parse_args()
    model = load_model("embedded")
    report: dict = {}
    if args.click_speed or args.estimates:
        if args.click_speed:
            for precision in args.precisions.split(","):
                report[f"click {precision}"] = click_speed(model, precision, args.repeats)
                print(precision, json.dumps(report[f"click {precision}"], indent=1), flush=True)
        if args.estimates:
            estimates(model, args, report)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2, default=float))
        return

    if not args.skip_speed:
        print("== Deletion speed, fewshot-mistake sentences", flush=True)
        for precision in ("bfloat16", "float32"):
            report[f"speed {precision}"] = speed(model, precision)
            print(precision, report[f"speed {precision}"], flush=True)
    if args.speed_only:
        return
    _faithfulness(model, args, report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=float))


def _parser() -> argparse.ArgumentParser:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--json", help="write all numbers here")
    parser.add_argument("--ig-cases", type=int, default=24, help="cases that also run Integrated Gradients")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument(
        "--estimates", action="store_true", help="only section 4: every method on copy, samples, realistic"
    )
    parser.add_argument("--realistic", type=int, default=36, help="cases of the realistic set")
    parser.add_argument("--granularities", default="sentences,lines,slots")
    parser.add_argument("--ig", action="store_true", help="section 4 also runs Integrated Gradients")
    parser.add_argument("--click-speed", action="store_true", help="only the click timings")
    parser.add_argument("--precisions", default="bfloat16,float32", help="of the click timings")
    parser.add_argument("--repeats", type=int, default=5, help="clicks per method (median)")
    return parser


def _faithfulness(model, args, report: dict) -> None:
    """Sections 1-3: the copy-from-context cases, Integrated Gradients' baselines, the sample
    prompts, Deletion in bfloat16, the scale probe and model randomization."""
    print(f"== {args.cases} copy-from-context cases (float32)", flush=True)
    copies = copy_suite(model, args.cases, ("grad_l2", "grad_dot_input"))
    print(
        f"== Integrated Gradients on the first {args.ig_cases} cases: default, then an 'absent' baseline",
        flush=True,
    )
    integrated = copy_suite(model, args.ig_cases, ("integrated_gradients",))
    before = copy_suite(
        model, args.ig_cases, ("integrated_gradients",), integrated_steps=32, integrated_baseline="mean"
    )
    print("== sample prompts", flush=True)
    samples = sample_suite(model, GRADIENT_METHODS)

    methods = ("grad_l2", "grad_dot_input", DELETION)
    copy_rows = [summarize(copies, m) for m in methods] + [summarize(integrated, "integrated_gradients")]
    before_row = summarize(before, "integrated_gradients")
    subset_rows = [summarize(copies[:CI_SUBSET], m) for m in methods]
    sample_rows = [summarize(samples, m) for m in (*GRADIENT_METHODS, DELETION)]
    deletion_bf16 = [summarize(copy_suite(model, CI_SUBSET, (), precision="bfloat16"), DELETION)]
    gaps = [c.extra["diagnostics"]["integrated_gradients"]["completeness_gap"] for c in integrated]
    gaps_before = [c.extra["diagnostics"]["integrated_gradients"]["completeness_gap"] for c in before]

    _print_tables(args, copies, samples, copy_rows, before_row, subset_rows, sample_rows, deletion_bf16)
    _print_gaps(gaps, gaps_before)
    report["scale_probe"] = scale_probe(model)
    print(
        "Change in log p of the answer when the used fact's embeddings are scaled / it is deleted:",
        report["scale_probe"],
    )
    report["randomization"] = randomization(model)
    print("Model randomization (mean Spearman trained vs re-initialised):", report["randomization"])
    report["copy"] = [row.__dict__ for row in copy_rows]
    report["before_ig"] = before_row.__dict__
    report["subset"] = [row.__dict__ for row in subset_rows]
    report["samples"] = [row.__dict__ for row in sample_rows]
    report["deletion_bf16"] = [row.__dict__ for row in deletion_bf16]
    report["ig_gap"] = {"default": float(np.median(gaps)), "mean32": float(np.median(gaps_before))}


def _print_tables(
    args, copies, samples, copy_rows, before_row, subset_rows, sample_rows, deletion_bf16
) -> None:
    """Sections 1-3's tables."""
    print()
    print(table(copy_rows, f"Copy-from-context, {len(copies)} cases (float32)"))
    print()
    print(
        table(
            [before_row],
            f"Integrated Gradients from the vocabulary's mean embedding, 32 steps, {args.ig_cases} cases",
        )
    )
    print()
    print(table(subset_rows, f"First {CI_SUBSET} cases (the real-model test's subset)"))
    print()
    print(
        table(
            deletion_bf16,
            f"Deletion in bfloat16 (the app's default) against the float32 oracle, {CI_SUBSET} cases",
        )
    )
    print()
    print(table(sample_rows, f"Sample prompts ({len(samples)}), sentences"))


def _print_gaps(gaps: list[float], gaps_before: list[float]) -> None:
    """Integrated Gradients' completeness gaps, default and from the mean embedding."""
    print()
    print(
        f"IG completeness gap, median (90th pct): default (zero, 16 steps) {np.median(gaps):.3f} ({np.percentile(gaps, 90):.3f}); "
        f"mean baseline, 32 steps {np.median(gaps_before):.3f} ({np.percentile(gaps_before, 90):.3f})"
    )


if __name__ == "__main__":
    main()
