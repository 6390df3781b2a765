"""Where a segment is, in words: example blocks, labelled lines, variable values, copies."""

import regex

from salience.prompts.describe import Locator, describe_segments, numbered, ordinal
from salience.prompts.segments import make_segments
from salience.prompts.templates import content_label, humanize, render

FEWSHOT = (
    "Rate a dish.\n\n"
    "Likes: sweet\nDish: soup\nVerdict: {first}\n\n"
    "Likes: sweet\nDish: cake\nVerdict: Try it.\n\n"
    "Likes: {likes}\nDish: {dish}\nVerdict:"
)


def tokens(text):
    return [(0, 0)] + [m.span() for m in regex.finditer(r"\n+|[^\S\n]*[^\s]+|[^\S\n]+", text)]


def fewshot():
    rendered = render(FEWSHOT, {"first": "Try it.", "likes": "salt", "dish": "pie"})
    return rendered, rendered.text


def test_ordinals():
    assert [ordinal(n) for n in (1, 2, 10, 11, 22)] == ["first", "second", "tenth", "11th", "22nd"]
    assert [numbered(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 101)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "101st"
    ]  # fmt: skip


def test_repeated_labelled_blocks_are_examples_and_lines_are_named_by_label():
    rendered, prompt = fewshot()
    where = Locator(prompt, len(prompt), rendered.slots).where
    first = prompt.index("Verdict: Try it.")
    second = prompt.index("Verdict: Try it.", first + 1)
    line = len("Verdict: Try it.")
    assert where(first, first + line) == "the first example's Verdict line, with the ‘first’ value"
    assert where(second, second + line) == "the second example's Verdict line"
    dish = prompt.index("Dish: pie")
    assert where(dish, dish + 9) == "the Dish line of the example being answered, with the ‘dish’ value"
    word = prompt.index("cake")
    assert where(word, word + 4) == "in the second example's Dish line"
    assert where(0, len("Rate a dish.")) == ""  # an unlabelled line names itself


def test_labels_outside_examples_get_ordinals_and_values_are_named():
    prompt = "Note: a\nText: b\nNote: c\n"
    where = Locator(prompt, len(prompt)).where
    assert where(0, 7) == "the 1st Note line"
    assert where(16, 23) == "the 2nd Note line"
    rendered = render("Hello {user_name}, welcome.", {"user_name": "Ada"})
    locate = Locator(rendered.text, len(rendered.text), rendered.slots)
    assert locate.where(6, 9) == "the ‘user name’ value"


def test_every_copy_of_a_repeated_sentence_is_told_apart():
    prompt = "Say hi.\nSay hi.\nSay hi.\nNow:"
    text = prompt + " hi"
    segments = make_segments(text, tokens(text), "sentences", prompt_length=len(prompt))
    places = describe_segments(segments, text, len(prompt))
    copies = [places[i] for i, seg in enumerate(segments) if seg.text.strip() == "Say hi."]
    assert copies == ["the 1st of 3 copies", "the 2nd of 3 copies", "the 3rd of 3 copies"]
    rendered, prompt = fewshot()
    text = prompt + " Try it."
    segments = make_segments(text, tokens(text), "sentences", prompt_length=len(prompt))
    places = describe_segments(segments, text, len(prompt), rendered.slots)
    named = [places[i] for i, seg in enumerate(segments) if seg.text.strip() == "Likes: sweet"]
    assert named == ["the first example's Likes line", "the second example's Likes line"]
    assert places[-1] == ""  # output segments get no place


def test_template_parts_are_named_by_content():
    assert humanize("menu_item") == "menu item" and humanize("foodLikes") == "food likes"
    assert content_label("Analyze a menu item in a restaurant.") == "“Analyze a menu item…”"
    assert content_label("\nAnalysis:") == "“Analysis:”"
    assert content_label("\n\n") == "blank line"
    rendered = render("{a}\nAnswer:{b}\nAnswer:", {"a": "x", "b": "y"})
    assert [slot.title for slot in rendered.slots] == ["a", "“Answer:”", "b", "“Answer:” (2)"]
