"""What takes the selection's place in a what-if's new output, said in one plain line."""

from __future__ import annotations

from salience.report.whatif import counterpart, leading_label

OLD = " it has cheese in it, which you don't like.\nRecommendation: You have to try it."


def _selection(output: str, text: str) -> tuple[int, int]:
    start = output.index(text)
    return start, start + len(text)


def test_the_new_recommendation_line_takes_its_place():
    new = " it has eggs in it.\nRecommendation: Avoid."
    found = counterpart(OLD, new, _selection(OLD, "Recommendation: You have to try it."))
    assert (found.label, found.before, found.after, found.found_by) == (
        "Recommendation",
        "You have to try it.",
        "Avoid.",
        "label",
    )
    assert found.sentence() == (
        "Without this line the recommendation changes from ‘You have to try it.’ to ‘Avoid.’"
    )


def test_the_same_recommendation_stays_the_same():
    new = " something else entirely.\nRecommendation: You have to  try it."
    found = counterpart(OLD, new, _selection(OLD, "Recommendation: You have to try it."))
    assert not found.changed
    assert found.sentence("sentence") == (
        "Without this sentence the recommendation stays the same: ‘You have to try it.’"
    )


def test_no_counterpart_and_an_empty_output_are_said_plainly():
    selection = _selection(OLD, "Recommendation: You have to try it.")
    missing = counterpart(OLD, " it rambles on and on about cheese.\nTaste-likes: ham", selection)
    assert missing.after is None
    assert missing.sentence() == (
        "Without this line the new output has no Recommendation line; it reads "
        "‘it rambles on and on about cheese.’ and goes on"
    )
    empty = counterpart(OLD, "  \n", selection)
    assert empty.sentence() == "Without this line the model writes nothing at all."


def test_a_repeated_label_keeps_its_occurrence():
    old = "Recommendation: Yes.\nRecommendation: No."
    new = "Recommendation: Maybe.\nRecommendation: Never."
    found = counterpart(old, new, _selection(old, "Recommendation: No."))
    assert found.after == "Never."
    fewer = counterpart(old, "Recommendation: Maybe.", _selection(old, "Recommendation: No."))
    assert fewer.after == "Maybe."  # the last one there is


def test_without_a_label_by_leading_words_then_by_position():
    old = "The cat sat. It was happy. Then it slept."
    by_words = counterpart(old, "The cat sat. It was sad.", _selection(old, "It was happy."))
    assert (by_words.found_by, by_words.after) == ("words", "It was sad.")
    assert by_words.sentence("sentence") == (
        "Without this sentence the selected text changes from ‘It was happy.’ to ‘It was sad.’"
    )
    by_position = counterpart(old, "A dog ran. A bird sang. Rain fell.", _selection(old, "Then it slept."))
    assert (by_position.found_by, by_position.after) == ("position", "Rain fell.")
    none = counterpart(old, "Short.", _selection(old, "Then it slept."))
    assert none.after is None and "nothing in the selection's place" in none.sentence()


def test_one_sentence_output_without_sentence_ends():
    found = counterpart("yes", "no", (0, 3))
    assert found.after == "no" and found.changed


def test_leading_label():
    assert leading_label("Recommendation: Avoid.") == "Recommendation"
    assert leading_label("  Taste-likes: cheese") == "Taste-likes"
    assert leading_label("No label here.") == ""
    assert leading_label("This is far too long a label to be one: x") == ""
