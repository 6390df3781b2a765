"""Template parsing and rendering: spans trace every character back to the template."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salience.prompts.templates import TemplateError, parse_template, render


def test_variables_in_order_of_first_use():
    template = parse_template("{b} and {a} then {b} again")
    assert template.variables == ("b", "a")


def test_render_spans():
    rendered = render("Likes: {food}\nDislikes: {bad}. {food}!", {"food": "Cheese", "bad": "eggs"})
    assert rendered.text == "Likes: Cheese\nDislikes: eggs. Cheese!"
    kinds = [(s.kind, s.name) for s in rendered.slots]
    assert kinds == [
        ("fixed", "text 1"),
        ("variable", "food"),
        ("fixed", "text 2"),
        ("variable", "bad"),
        ("fixed", "text 3"),
        ("variable", "food"),
        ("fixed", "text 4"),
    ]
    for slot in rendered.slots:
        assert rendered.text[slot.start : slot.end] == slot.text
    assert len(rendered.slots_named("food")) == 2


def test_literal_braces():
    rendered = render('JSON: {{"k": {v}}}', {"v": "1"})
    assert rendered.text == 'JSON: {"k": 1}'


def test_empty_template_and_no_variables():
    assert render("", {}).text == ""
    assert parse_template("plain text").variables == ()


@pytest.mark.parametrize(
    ("source", "message", "line", "column"),
    [
        ("ab\ncd {x", "never closed", 2, 4),
        ("a } b", "no matching", 1, 3),
        ("x {} y", "empty field", 1, 3),
        ("{0}", "positional", 1, 1),
        ("{a.b}", "attribute", 1, 1),
        ("{a:>10}", "format spec", 1, 1),
        ("{a!r}", "conversion", 1, 1),
        ("{a[0]}", "indexing", 1, 1),
        ("{two words}", "not a valid variable name", 1, 1),
        ("{a{b}}", "never closed", 1, 1),
    ],
)
def test_errors_carry_line_and_column(source, message, line, column):
    with pytest.raises(TemplateError, match=message) as info:
        parse_template(source)
    assert (info.value.line, info.value.column) == (line, column)
    assert f"line {line}, column {column}" in str(info.value)


def test_missing_and_unknown_values():
    with pytest.raises(TemplateError, match="needs a value for b"):
        render("{a} {b}", {"a": "1"})
    with pytest.raises(TemplateError, match="no field named c"):
        render("{a}", {"a": "1", "c": "2"})
    assert render("{a}", {"a": "1", "c": "2"}, allow_unused=True).text == "1"


def test_nothing_is_evaluated():
    with pytest.raises(TemplateError):
        parse_template("{__import__('os').system('echo hi')}")


names = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)
fixed = st.text(st.characters(blacklist_characters="{}", blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(fixed, names), max_size=5), fixed, st.data())
def test_render_spans_match_values(parts, tail, data):
    source = "".join(f"{text}{{{name}}}" for text, name in parts) + tail
    template = parse_template(source)
    values = {name: data.draw(st.text(max_size=8), label=name) for name in template.variables}
    rendered = render(template, values)
    assert "".join(slot.text for slot in rendered.slots) == rendered.text
    for slot in rendered.slots:
        assert rendered.text[slot.start : slot.end] == slot.text
        if slot.kind == "variable":
            assert slot.text == values[slot.name]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("{}ab_0 .:!\n")), max_size=30))
def test_random_templates_parse_or_raise_our_error(source):
    try:
        template = parse_template(source)
    except TemplateError:
        return
    values = {name: f"<{name}>" for name in template.variables}
    rendered = render(template, values)
    # The same text as Python's own format (which reads {{, }} and {name} alike), and every
    # slot is the characters it claims: fixed text, or a variable's value.
    assert rendered.text == source.format(**values)
    assert "".join(slot.text for slot in rendered.slots) == rendered.text
    for slot in rendered.slots:
        assert rendered.text[slot.start : slot.end] == slot.text
        if slot.kind == "variable":
            assert slot.text == values[slot.name]
