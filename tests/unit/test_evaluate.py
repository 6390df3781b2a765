"""Evaluation engine without a model: datasets, checks, intervals, flips, exports."""

import csv
import io
import json
import time

import pytest

from salience.core.errors import InputError
from salience.evaluation.runs import (
    MAX_CELL_CHARS,
    MAX_ROWS,
    CellResult,
    Check,
    Dataset,
    export_jsonl,
    flips,
    load_data,
    parse_check,
    parse_data,
    plan_evaluation,
    report_html,
    report_json,
    row_order,
    safe_cell,
    score,
    summarize,
    wilson_interval,
)
from salience.evaluation.runs import export_csv as to_csv
from salience.prompts.samples import find_sample
from salience.prompts.variant import Variant

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
MENU = Variant("menu", "Likes: {likes}\nItem: {item}\nRecommendation:")


def table(text):
    return parse_data(text)


# ---- datasets ----------------------------------------------------------------------------------
def test_csv_with_bom_and_utf16_and_quotes():
    text = 'likes,item\nCheese,"Quiche, Lorraine"\n'
    for content in (b"\xef\xbb\xbf" + text.encode(), text.encode("utf-16")):
        data = parse_data(content)
        assert data.columns == ("likes", "item")
        assert data.rows[0]["item"] == "Quiche, Lorraine"


def test_non_utf8_file_says_how_to_fix():
    with pytest.raises(InputError, match=r"not UTF-8 text \(byte 0xE9 on line 2.*CSV UTF-8"):
        parse_data("likes,item\nCafé,Crêpe\n".encode("cp1252"))


def test_duplicate_and_unnamed_columns_are_named():
    with pytest.raises(InputError, match=r"Column 'item' appears twice \(columns 2 and 3\)"):
        table("likes,item,item\na,b,c\n")
    with pytest.raises(InputError, match="Column 2 of the header has no name"):
        table("likes,,item\na,b,c\n")


def test_extra_cells_name_the_row_and_short_rows_pad():
    with pytest.raises(InputError, match="Row 2 has 3 cells but the header names 2 columns"):
        table("likes,item\na,b\nc,d,e\n")
    assert table("likes,item\na\n").rows[0] == {"likes": "a", "item": ""}


def test_tab_separated_paste_and_jsonl():
    assert table("likes\titem\nCheese\tQuiche\n").rows[0]["item"] == "Quiche"
    data = table('{"likes": "Cheese", "n": 3}\n{"item": "Soup"}\n')
    assert data.columns == ("likes", "n", "item")
    assert data.rows[0] == {"likes": "Cheese", "n": "3", "item": ""}
    with pytest.raises(InputError, match="Line 2: not valid JSON"):
        table('{"a": "b"}\n{oops\n')
    with pytest.raises(InputError, match="Line 1, column 'a': nested values"):
        table('{"a": {"b": 1}}\n')


def test_row_limit_says_how_to_split():
    text = "item\n" + "x\n" * (MAX_ROWS + 1)
    with pytest.raises(InputError, match=r"2,001 rows; at most 2,000 run at once\. Split it"):
        table(text)


def test_huge_cell_names_row_and_column():
    text = "likes,item\nok,ok\nok," + "x" * 5_000_000 + "\n"
    with pytest.raises(InputError, match=rf"Row 2, column 'item'.*limit is {MAX_CELL_CHARS:,}"):
        table(text)


def test_header_only_and_empty():
    with pytest.raises(InputError, match="no rows"):
        table("likes,item\n")
    with pytest.raises(InputError, match="empty"):
        table("\n\n")


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_data(tmp_path / "nope.csv")


# ---- planning ----------------------------------------------------------------------------------
def test_missing_column_is_named_before_anything_runs():
    data = table("likes,dish\na,b\n")
    with pytest.raises(InputError, match=r"Variant 'menu' needs the column 'item'.*columns: likes, dish"):
        plan_evaluation([MENU], data)


def test_extra_empty_and_formula_cells_are_notes():
    data = table("likes,item,notes\n=1+1,b,x\n,c,y\n")
    plan = plan_evaluation([MENU], data, [Check("contains", "a")])
    text = " ".join(plan.notes)
    assert "Column 'notes' is not used" in text
    assert "Column 'likes' is empty in row 2" in text
    assert "row 1 'likes'" in text and "never as formulas" in text
    assert plan.rendered(0, 0).text.startswith("Likes: =1+1\n")


def test_defaults_fill_variables_without_a_column():
    variant = Variant("fixed", "First: {first}\nItem: {item}", {"first": "Avoid."})
    plan = plan_evaluation([variant], table("item\nSoup\n"))
    assert plan.rendered(0, 0).text == "First: Avoid.\nItem: Soup"
    assert plan.warnings == (
        "The data has no column 'first': variant 'fixed' uses its own value there in every row. "
        "Add the column if it should vary.",
    )


def test_bad_variants():
    data = table("item\nSoup\n")
    with pytest.raises(InputError, match="Variant 'broken': Template line 1"):
        plan_evaluation([Variant("broken", "Item: {item")], data)
    with pytest.raises(InputError, match="Variant 'plain' has no {variables}"):
        plan_evaluation([Variant("plain", "No fields here")], data)
    with pytest.raises(InputError, match="Two variants are named 'a'"):
        plan_evaluation([Variant("a", "{item}"), Variant("a", "{item}!")], data)
    with pytest.raises(InputError, match="at most 4 variants"):
        plan_evaluation([Variant(str(i), "{item}") for i in range(5)], data)
    with pytest.raises(InputError, match="expected-answer column 'answer' is not in the data"):
        plan_evaluation([Variant("a", "{item}")], data, expected_column="answer")


# ---- checks ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "output", "passed"),
    [
        ("contains:Avoid", " Recommendation: Avoid.", True),
        ("contains:avoid", " Recommendation: Avoid.", False),
        ("contains/i:avoid", " Recommendation: Avoid.", True),
        ("not-contains:Avoid", "Likely good.", True),
        ("starts-with:It has", "  It has eggs", True),
        ("equals:Avoid.", "  Avoid. \n", True),
        ("equals/i:avoid.", "Avoid.", True),
        ("regex:^Recommendation: (Avoid|Skip)", "x\nRecommendation: Skip", True),
        ("max-words:3", "one two three", True),
        ("max-words:2", "one two three", False),
        ("json", ' {"a": 1}', True),
        ("json", "{a: 1}", False),
    ],
)
def test_checks(spec, output, passed):
    assert parse_check(spec).run(output)[0] is passed


def test_expected_check_takes_alternatives_and_ignores_case():
    check = Check("expected")
    assert check.run("Recommendation: likely good.", "Likely good|You have to try it")[0]
    assert check.run("You have to try it.", "Likely good|You have to try it")[0]
    assert not check.run("Avoid.", "Likely good|You have to try it")[0]
    assert check.run("Avoid.", "") == (False, "this row has no expected value")


def test_bad_checks_say_what_to_fix():
    with pytest.raises(InputError, match="not a valid regular expression"):
        parse_check("regex:(unclosed")
    with pytest.raises(InputError, match="Unknown check 'has'"):
        parse_check("has:x")
    with pytest.raises(InputError, match="needs a whole number"):
        parse_check("max-words:many")
    with pytest.raises(InputError, match="KIND:VALUE"):
        parse_check("contains")


def test_slow_regex_fails_the_check_instead_of_hanging():
    started = time.perf_counter()
    passed, why = Check("regex", r"(a+)+$").run("a" * 5000 + "!")
    assert not passed and "longer than" in why
    assert time.perf_counter() - started < 3.0


# ---- results -----------------------------------------------------------------------------------
def test_wilson_interval_known_values():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0


def two_variant_plan():
    data = table("likes,item,expected\na,Soup,Avoid\nb,Cake,good\nc,Pie,good\n")
    variants = [Variant("A", "L {likes} I {item}"), Variant("B", "I {item} L {likes}")]
    return plan_evaluation(variants, data, [], "expected")


def test_flips_listed_first_and_summary():
    plan = two_variant_plan()
    outputs = {(0, 0): "Avoid", (1, 0): "good", (2, 0): "bad", (0, 1): "Avoid", (1, 1): "bad", (2, 1): "good"}
    results = [score(plan, r, v, text) for (r, v), text in outputs.items()]
    a, b = summarize(plan, results)
    assert (a.passed, a.total, b.passed) == (2, 3, 2)
    found = flips(plan, results)
    assert [(f.row, f.passes_in) for f in found] == [(1, 0), (2, 1)]  # broken by B first
    assert found[0].describe(plan) == "row 2: passes in A, fails in B"
    assert row_order(plan, results) == [1, 2, 0]
    report = report_json(plan, results)
    assert report["variants"][0]["interval"][0] < 2 / 3 < report["variants"][0]["interval"][1]
    assert report["rows"][1]["variants"]["B"]["checks"][0]["passed"] is False
    assert report["flips"][0] == {"row": 2, "a": "A", "b": "B", "passes_in": "A", "broke": True}
    json.dumps(report)


def test_error_cells_fail_and_round_trip():
    cell = CellResult(0, 1, "", (False,), (), 0.1, {"menu item": 0.5}, "Row 1: too long")
    assert not cell.passed
    assert CellResult.from_json(json.loads(json.dumps(cell.to_json()))) == cell


def test_csv_export_neutralises_formulas():
    data = Dataset(("item",), ({"item": '=HYPERLINK("http://x")'},))
    plan = plan_evaluation([Variant("A", "{item}")], data, [Check("contains", "x")])
    exported = to_csv(plan, [score(plan, 0, 0, "@SUM(A1)")])
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[1][1].startswith("'=") and rows[1][3].startswith("'@")
    assert safe_cell("-1") == "'-1" and safe_cell("plain") == "plain"


# ---- shipped data ------------------------------------------------------------------------------
def test_menu_set_fits_the_fewshot_samples():
    data = load_data(ROOT / "data" / "eval" / "menu_recommendations.csv")
    assert len(data.rows) >= 30
    variants = [
        Variant(name, find_sample(name).template, find_sample(name).variables)
        for name in ("fewshot-mistake", "fewshot-fixed")
    ]
    plan = plan_evaluation(variants, data, [], "expected")
    assert not [note for note in plan.notes if "not used" in note or "empty" in note]
    assert not plan.notes and len(plan.warnings) == 2  # each variant's own first_recommendation
    assert {row["expected"] for row in data.rows} == {"Avoid", "Likely good|You have to try it"}
    assert "Suggestion: Quiche Lorraine\nAnalysis:" in plan.rendered(0, 1).text
    assert "Recommendation: Avoid." in plan.rendered(0, 1).text


def test_context_set_fits_its_sample():
    data = load_data(ROOT / "data" / "eval" / "context_questions.jsonl")
    sample = find_sample("copy-from-context")
    plan = plan_evaluation([Variant(sample.name, sample.template)], data, [], "expected")
    assert len(data.rows) >= 20 and not plan.notes
    with pytest.raises(InputError, match="takes none of its variables from the data"):
        plan_evaluation([Variant("h", "A {article}", {"article": "x"})], data)


def test_html_report_is_self_contained_and_escapes_text():
    plan = two_variant_plan()
    cells = [score(plan, 0, 0, "<script>alert(1)</script> Avoid"), score(plan, 0, 1, "fine")]
    cells[0] = CellResult(0, 0, cells[0].output, cells[0].checks, (), 0.0, {"item": 0.6, "“L”": 0.4})
    html = report_html(plan, cells, "Menu <check>")
    assert "<script" not in html.lower() and "&lt;script&gt;" in html
    assert "Menu &lt;check&gt;" in html and "95% interval (Wilson)" in html
    assert "row 1: passes in A, fails in B" in html and "mean share" in html
    lines = [json.loads(line) for line in export_jsonl(plan, cells).splitlines()]
    assert lines[0]["variant"] == "A" and lines[0]["shares"] == {"item": 0.6, "“L”": 0.4}
