"""Faithfulness checks: do a method's top segments match what deleting them does?

A generated suite of copy-from-context cases (a few fact sentences, then a
question whose answer is copied from exactly one of them) gives a ground truth
by construction; Deletion gives an oracle on any prompt. For each method we
measure top-1 agreement with both, Spearman correlation with the Deletion
scores, and comprehensiveness (how much deleting the method's top segment
lowers log p(target), against a random segment). Used by
``bench/bench_faithfulness.py`` and by the real-model tests.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from salience.attribution.agreement import spearman
from salience.attribution.methods import DELETION, get_method, segment_aggregation
from salience.prompts.segments import aggregate, make_segments

NAMES = ["Tom", "Anna", "Ravi", "Lena", "Omar", "Mia", "Kenji", "Sofia", "Pedro", "Nora", "Igor", "Zoe"]
CITIES = ["Paris", "Lisbon", "Oslo", "Cairo", "Lima", "Seoul", "Dublin", "Vienna", "Quito", "Hanoi"]
MONTHS = ["March", "April", "June", "July", "August", "October", "November", "December"]
EVENTS = ["the concert", "the picnic", "the exam", "the wedding", "the marathon", "the meeting", "the fair"]
VARIABLES = ["timeout", "retries", "batch_size", "port", "max_depth", "seed", "width", "offset"]
ITEMS = ["apples", "bread", "candles", "soap", "rice", "coffee", "batteries", "tea", "eggs", "pencils"]
COLOURS = ["red", "blue", "green", "yellow", "black", "white", "orange", "grey"]
OBJECTS = ["a compass", "old letters", "a silver key", "two maps", "a lamp", "seeds", "a clock", "coins"]


@dataclass(frozen=True)
class CopyCase:
    """A prompt of facts and a question; ``target`` is copied from fact ``used`` (an index)."""

    kind: str
    facts: tuple[str, ...]
    question: str
    target: str
    used: int

    @property
    def prompt(self) -> str:
        return " ".join(self.facts) + f"\nQuestion: {self.question}\nAnswer:"

    def fact_spans(self) -> list[tuple[int, int]]:
        """Character span of every fact in the prompt."""
        spans, at = [], 0
        for fact in self.facts:
            spans.append((at, at + len(fact)))
            at += len(fact) + 1
        return spans


def _fact_sets(rng: random.Random, kind: str) -> tuple[list[str], str, str]:
    """(facts with the used one first, question, answer) for one kind of fact."""
    count = rng.randint(3, 6)
    if kind == "places":
        names = rng.sample(NAMES, count)
        cities = rng.sample(CITIES, count + 1)
        facts = [f"{names[0]} lives in {cities[0]}."]
        facts.append(f"{names[0]}'s sister lives in {cities[count]}.")  # shares the question's words
        facts += [f"{n} lives in {c}." for n, c in zip(names[1 : count - 1], cities[1 : count - 1])]
        return facts[:count], f"Where does {names[0]} live?", f" {cities[0]}"
    if kind == "numbers":
        names = rng.sample(NAMES, count)
        numbers = rng.sample(range(10, 99), count + 1)
        facts = [f"The locker code for {names[0]} is {numbers[0]}."]
        facts.append(f"The room number for {names[0]} is {numbers[count]}.")
        facts += [f"The locker code for {n} is {k}." for n, k in zip(names[1 : count - 1], numbers[1:])]
        return facts[:count], f"What is the locker code for {names[0]}?", f" {numbers[0]}"
    if kind == "dates":
        events = rng.sample(EVENTS, count)
        days = [f"{rng.choice(MONTHS)} {rng.randint(2, 28)}" for _ in range(count + 1)]
        facts = [f"{events[0].capitalize()} is on {days[0]}."]
        facts.append(f"The ticket sale for {events[0]} is on {days[count]}.")
        facts += [f"{e.capitalize()} is on {d}." for e, d in zip(events[1 : count - 1], days[1:])]
        return facts[:count], f"When is {events[0]}?", f" {days[0]}"
    if kind == "code":
        names = rng.sample(VARIABLES, count)
        values = rng.sample(range(2, 500), count + 1)
        facts = [f"In the config, {names[0]} is set to {values[0]}."]
        facts.append(f"In the old config, {names[0]} was set to {values[count]}.")
        facts += [f"In the config, {n} is set to {v}." for n, v in zip(names[1 : count - 1], values[1:])]
        return facts[:count], f"What is {names[0]} set to in the config?", f" {values[0]}"
    if kind == "lists":
        items = rng.sample(ITEMS, count + 1)
        order = rng.sample(range(1, 9), count)
        facts = [f"Item {order[0]} on the shopping list is {items[0]}."]
        facts.append(f"Item {order[0]} on the old list was {items[count]}.")
        facts += [f"Item {k} on the shopping list is {i}." for k, i in zip(order[1 : count - 1], items[1:])]
        return facts[:count], f"What is item {order[0]} on the shopping list?", f" {items[0]}"
    colours = rng.sample(COLOURS, count)
    objects = rng.sample(OBJECTS, count + 1)
    facts = [f"The {colours[0]} box contains {objects[0]}."]
    facts.append(f"The lid of the {colours[0]} box hides {objects[count]}.")
    facts += [f"The {c} box contains {o}." for c, o in zip(colours[1 : count - 1], objects[1:])]
    return facts[:count], f"What does the {colours[0]} box contain?", f" {objects[0]}"


KINDS = ("places", "numbers", "dates", "code", "lists", "boxes")


def make_cases(count: int = 60, seed: int = 0) -> list[CopyCase]:
    """``count`` copy-from-context cases, kinds in turn, facts in random order."""
    rng = random.Random(seed)
    cases = []
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        facts, question, answer = _fact_sets(rng, kind)
        order = list(range(len(facts)))
        rng.shuffle(order)
        shuffled = tuple(facts[i] for i in order)
        cases.append(CopyCase(kind, shuffled, question, answer, order.index(0)))
    return cases


@dataclass
class CaseScores:
    """Segment scores of one prompt under every method, with the Deletion oracle."""

    name: str
    segments: list[tuple[int, int]]  # character spans of the prompt's segments (no <bos>)
    scores: dict[str, np.ndarray]  # method -> one score per segment
    oracle: np.ndarray  # Deletion (float32): log p drop when the segment is removed
    used: int | None = None  # index into segments of the fact used, when known by construction
    extra: dict = field(default_factory=dict)


def score_segments(
    model,
    prompt: str,
    target: str,
    methods: Sequence[str],
    granularity: str = "sentences",
    precision: str = "float32",
    slots=(),
    **options,
) -> tuple[list, dict[str, np.ndarray], object]:
    """(prompt segments, per-method segment scores, the salience result) for prompt → target.

    ``slots`` (a rendered template's) serve the ``slots`` granularity; ``options`` go to
    `LanguageModel.salience` (e.g. ``integrated_steps``, ``integrated_baseline``)."""
    tokens, _ = model.tokenize_pair(prompt, target)
    segments = make_segments(
        prompt + target, tokens.offsets, granularity, prompt_length=len(prompt), slots=slots
    )
    spans = [(s.token_start, s.token_end) for s in segments]
    result = model.salience(
        prompt, target, methods=tuple(methods), precision=precision, segments=spans, **options
    )
    prompt_segments = [s for s in segments if not s.in_target and s.token_start > 0 and s.text.strip()]
    scores = {
        name: aggregate(result.scores[name], prompt_segments, segment_aggregation(name, "sum"))
        for name in methods
    }
    return prompt_segments, scores, result


def top_index(values: np.ndarray, signed_top: str = "largest") -> int:
    """Index of the top segment: largest value, or largest magnitude, or most negative."""
    if signed_top == "magnitude":
        return int(np.argmax(np.abs(values)))
    if signed_top == "smallest":
        return int(np.argmin(values))
    return int(np.argmax(values))


@dataclass(frozen=True)
class MethodSummary:
    """One row of the faithfulness table."""

    method: str
    cases: int
    top1_truth: float | None  # top segment is the fact used (copy cases)
    most_negative_truth: float | None  # most negative segment is the fact used (signed methods)
    magnitude_truth: float | None  # largest |score| is the fact used (signed methods)
    top1_oracle: float  # top segment equals Deletion's top segment
    spearman: float  # mean Spearman with Deletion scores
    comprehensiveness: float  # mean log p drop when deleting the method's top segment
    random_drop: float  # mean log p drop when deleting a random segment


def summarize(cases: Sequence[CaseScores], method: str, seed: int = 0) -> MethodSummary:
    """Aggregate the metrics of one method over cases (ranking: the method's own top)."""
    rng = np.random.default_rng(seed)
    truth, negative, magnitude, oracle, correlations, drops, random_drops = [], [], [], [], [], [], []
    spec = get_method(method)
    for case in cases:
        values = case.scores[method]
        if len(values) < 2:
            continue
        # Unsigned scores rank by size; signed ones by value (the page's "most supportive").
        top = top_index(values, "largest")
        if case.used is not None:
            truth.append(top == case.used)
            if spec.signed:
                negative.append(top_index(values, "smallest") == case.used)
                magnitude.append(top_index(values, "magnitude") == case.used)
        oracle.append(top == int(np.argmax(case.oracle)))
        rho = spearman(values, case.oracle)
        if rho is not None:
            correlations.append(rho)
        drops.append(float(case.oracle[top]))
        random_drops.append(float(case.oracle[rng.integers(len(values))]))
    mean = lambda xs: float(np.mean(xs)) if xs else float("nan")  # noqa: E731
    return MethodSummary(
        method=method,
        cases=len(oracle),
        top1_truth=mean(truth) if truth else None,
        most_negative_truth=mean(negative) if negative else None,
        magnitude_truth=mean(magnitude) if magnitude else None,
        top1_oracle=mean(oracle),
        spearman=mean(correlations),
        comprehensiveness=mean(drops),
        random_drop=mean(random_drops),
    )


def used_segment(case: CopyCase, segments) -> int | None:
    """Index of the prompt segment holding the fact used (None if segmentation split it)."""
    start, end = case.fact_spans()[case.used]
    for index, seg in enumerate(segments):
        if seg.start <= start < seg.end:
            return index if seg.end >= end - 1 else None
    return None


def evaluate_copy_case(model, case: CopyCase, methods: Sequence[str], precision: str = "float32", **options):
    """CaseScores for one generated case: every method plus the float32 Deletion oracle."""
    wanted = tuple(dict.fromkeys([*methods, DELETION]))
    segments, scores, result = score_segments(
        model, case.prompt, case.target, wanted, precision=precision, **options
    )
    oracle = scores[DELETION]
    if precision != "float32":
        _, oracle_scores, _ = score_segments(
            model, case.prompt, case.target, (DELETION,), precision="float32"
        )
        oracle = oracle_scores[DELETION]
    return CaseScores(
        name=f"{case.kind}: {case.question}",
        segments=[(s.start, s.end) for s in segments],
        scores={name: scores[name] for name in wanted},
        oracle=oracle,
        used=used_segment(case, segments),
        extra={"log_prob": result.target_log_prob, "diagnostics": result.diagnostics},
    )


def restricted(case: CaseScores, keep: list[int]) -> CaseScores:
    """The same case with segments limited to ``keep`` (e.g. a copy case's fact sentences)."""
    index = [i for i in keep if i < len(case.oracle)]
    used = index.index(case.used) if case.used in index else None
    return CaseScores(
        case.name,
        [case.segments[i] for i in index],
        {name: values[index] for name, values in case.scores.items()},
        case.oracle[index],
        used,
        case.extra,
    )


def copy_case_scores(model, case: CopyCase, methods: Sequence[str], **options) -> CaseScores:
    """`evaluate_copy_case` ranked over the case's fact sentences only (they come first): deleting
    the question or the ``Answer:`` cue always matters and says nothing about which fact is used."""
    return restricted(evaluate_copy_case(model, case, methods, **options), list(range(len(case.facts))))
