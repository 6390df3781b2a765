"""A generated set of realistic prompts whose dependence is known by construction.

Each case is a template with variables (so it can be scored by sentence, line and
template slot), a reference target, and the line the target depends on: a few-shot
example whose label the answer repeats, an instruction that decides the answer, a
persona line, a template variable, a rule that applies, a policy entry. Every case
also holds a distractor that shares the target's words or layout (another example,
a colleague's persona, a billing city...). Generated from a seed, like the copy
suite in `salience.attribution.faithfulness`; nothing is tuned to any model's results.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from salience.prompts.variant import Variant

NAMES = ["Tom", "Anna", "Ravi", "Lena", "Omar", "Mia", "Kenji", "Sofia", "Pedro", "Nora", "Igor", "Zoe"]
CITIES = ["Paris", "Lisbon", "Oslo", "Cairo", "Lima", "Seoul", "Dublin", "Vienna", "Quito", "Hanoi"]
JOBS = ["baker", "pilot", "nurse", "gardener", "teacher", "chemist", "plumber", "librarian"]
TEAMS = ["Billing", "Shipping", "Security", "Returns", "Hardware", "Accounts"]
TICKETS = [
    "My card was charged twice for one order.",
    "The parcel has not arrived after ten days.",
    "Someone logged into my account from abroad.",
    "I want to send back the shoes I bought.",
    "The laptop screen flickers after the update.",
    "Please change the email on my profile.",
]
ITEMS = ["lamps", "chairs", "kettles", "blankets", "mirrors", "clocks", "rugs", "vases"]
GREETINGS = {
    "French": "Bonjour",
    "Spanish": "Hola",
    "German": "Guten Tag",
    "Italian": "Ciao",
    "Portuguese": "Olá",
    "Dutch": "Goedendag",
}
REPLY_WORDS = ["Sorry", "Great news", "Thank you", "Apologies", "Good news", "Unfortunately"]
TIERS = ["gold", "silver", "bronze", "platinum", "student", "family"]
SHOPS = ["bakery", "bike shop", "bookstore", "pharmacy", "flower shop", "hardware store"]
FILLER_LINES = [
    "Keep answers short and friendly.",
    "Do not share internal notes with customers.",
    "Office hours are nine to five on weekdays.",
    "Use plain words and avoid jargon.",
    "Never mention prices in a reply.",
    "Thank the customer at the end of a conversation.",
]


@dataclass(frozen=True)
class RealisticCase:
    """A template prompt, its reference target and the line (text) the target depends on."""

    kind: str
    variant: Variant
    target: str
    used_line: str

    @property
    def prompt(self) -> str:
        return self.variant.render().text


def _lines(rng: random.Random, count: int) -> list[str]:
    return rng.sample(FILLER_LINES, count)


def _fewshot_label(rng: random.Random) -> tuple[str, dict, str, str]:
    count = rng.randint(3, 4)
    teams = rng.sample(TEAMS, count)
    tickets = rng.sample(TICKETS, count)
    used = rng.randrange(count)
    blocks, values = [], {}
    for index in range(count):
        values[f"ticket_{index + 1}"] = tickets[index]
        values[f"team_{index + 1}"] = teams[index]
        blocks.append(f"Ticket: {{ticket_{index + 1}}}\nTeam: {{team_{index + 1}}}\n")
    values["query"] = tickets[used]
    template = "Route each support ticket to a team.\n\n" + "\n".join(blocks) + "\nTicket: {query}\nTeam:"
    return template, values, f" {teams[used]}", f"Team: {teams[used]}"


def _instruction(rng: random.Random) -> tuple[str, dict, str, str]:
    language, other = rng.sample(sorted(GREETINGS), 2)
    shop = rng.choice(SHOPS)
    lines = [
        "You answer messages for a {shop}.",
        "Always reply in {language}.",
        "The owner grew up speaking {other_language}.",
        *_lines(rng, 2),
    ]
    head, rest = lines[0], lines[1:]
    rng.shuffle(rest)
    template = "\n".join([head, *rest]) + "\n\nCustomer: Hello, are you open today?\nReply:"
    values = {"shop": shop, "language": language, "other_language": other}
    return template, values, f" {GREETINGS[language]}", f"Always reply in {language}."


def _persona(rng: random.Random) -> tuple[str, dict, str, str]:
    name, other = rng.sample(NAMES, 2)
    job, other_job = rng.sample(JOBS, 2)
    city, other_city = rng.sample(CITIES, 2)
    lines = [
        "You are {name}, a {job} from {city}.",
        "Your neighbour is {other}, a {other_job} from {other_city}.",
        *_lines(rng, 2),
    ]
    rng.shuffle(lines)
    template = "\n".join(lines) + "\n\nUser: Hi! Who are you?\nAssistant: Hello! I am"
    values = {
        "name": name,
        "job": job,
        "city": city,
        "other": other,
        "other_job": other_job,
        "other_city": other_city,
    }
    return template, values, f" {name}", f"You are {name}, a {job} from {city}."


def _template_variable(rng: random.Random) -> tuple[str, dict, str, str]:
    customer = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    city, billing = rng.sample(CITIES, 2)
    quantity = str(rng.randint(2, 9))
    fields = [
        "Customer: {customer}",
        "Item: {item}",
        "Quantity: {quantity}",
        "Ship to: {city}",
        "Billing city: {billing}",
    ]
    head, rest = fields[:1], fields[1:]
    rng.shuffle(rest)
    template = (
        "Order form\n"
        + "\n".join(head + rest)
        + "\n\nWrite a one-line note for the courier.\nNote: Deliver {quantity} {item} to"
    )
    values = {"customer": customer, "item": item, "quantity": quantity, "city": city, "billing": billing}
    return template, values, f" {city}", f"Ship to: {city}"


def _rule(rng: random.Random) -> tuple[str, dict, str, str]:
    late, on_time = rng.sample(REPLY_WORDS, 2)
    status = rng.choice(["late", "on time"])
    rules = [
        '- If the order is late, start with "{late_word}".',
        '- If the order is on time, start with "{on_time_word}".',
        *(f"- {line}" for line in _lines(rng, 2)),
    ]
    rng.shuffle(rules)
    template = (
        "Rules for the reply:\n" + "\n".join(rules) + "\n\nOrder status: the order is {status}.\nReply:"
    )
    values = {"late_word": late, "on_time_word": on_time, "status": status}
    word = late if status == "late" else on_time
    used = f'- If the order is {status}, start with "{word}".'
    return template, values, f" {word}", used


def _policy(rng: random.Random) -> tuple[str, dict, str, str]:
    count = rng.randint(3, 5)
    tiers = rng.sample(TIERS, count)
    discounts = rng.sample(range(5, 60, 5), count)
    used = rng.randrange(count)
    lines = [f"{tier.capitalize()} members get {discount}% off." for tier, discount in zip(tiers, discounts)]
    used_line = lines[used]
    lines.append(
        f"Last year {tiers[used]} members got {rng.choice([d for d in range(5, 60, 5) if d not in discounts])}% off."
    )
    rng.shuffle(lines)
    template = (
        "Store policy:\n"
        + "\n".join(lines)
        + "\n\nCustomer: I am a {tier} member. What discount do I get?\nAgent: You get"
    )
    return template, {"tier": tiers[used]}, f" {discounts[used]}%", used_line


BUILDERS = {
    "fewshot": _fewshot_label,
    "instruction": _instruction,
    "persona": _persona,
    "template": _template_variable,
    "rule": _rule,
    "policy": _policy,
}
KINDS = tuple(BUILDERS)


def make_realistic_cases(count: int = 36, seed: int = 0) -> list[RealisticCase]:
    """``count`` cases, kinds in turn, each drawn from ``random.Random(seed)``."""
    rng = random.Random(seed)
    cases = []
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        template, values, target, used_line = BUILDERS[kind](rng)
        variant = Variant(f"{kind} {index // len(KINDS) + 1}", template, values, target=target)
        cases.append(RealisticCase(kind, variant, target, used_line))
    return cases


def used_segment(case: RealisticCase, segments) -> int | None:
    """Index of the segment that is exactly the used line (None when it is split or merged)."""
    text = case.prompt
    start = text.index(case.used_line)
    for index, segment in enumerate(segments):
        if segment.start <= start < segment.end:
            inside = text[segment.start : segment.end].strip()
            return index if inside == case.used_line else None
    return None
