"""Evaluations in the workspace: cells committed one by one, resumed, listed, searched, deleted."""

import pytest

from salience.core.errors import InputError
from salience.evaluation.runs import Check, parse_data, plan_evaluation, run_evaluation, score
from salience.prompts.variant import Variant
from workspace.evaluations import (
    create_evaluation,
    delete_evaluation,
    evaluations,
    load_evaluation,
    record_cell,
    set_status,
)
from workspace.store import Workspace


@pytest.fixture
def workspace(database_url):
    opened = Workspace.open(database_url)
    yield opened
    opened.close()


@pytest.fixture
def plan():
    data = parse_data("likes,item,expected\nCheese,=Quiche,Avoid\nSweets,Cake 50%_off,good\n")
    variants = [Variant("mistake", "L {likes} I {item}"), Variant("fixed", "I {item} L {likes}")]
    return plan_evaluation(variants, data, [Check("contains", "a")], "expected")


class Model:
    """Counts generations, to show that a resumed run recomputes nothing."""

    def __init__(self):
        self.calls = 0

    def generate(self, prompt, settings, precision=None):
        from salience.core.types import Generation

        self.calls += 1
        return Generation(
            prompt, " Avoid." if "Quiche" in prompt else " good", (1,), "max_new_tokens", 0.0, 0.0
        )


def test_cells_survive_a_restart_and_resume(database_url, workspace, plan):
    evaluation_id = create_evaluation(workspace, "menu check", plan, {"max_new_tokens": 8}, "browser-1")
    model = Model()
    for cell in run_evaluation(plan, model, None, batch_size=1):
        assert record_cell(workspace, evaluation_id, cell)
        if model.calls == 3:
            break  # the server dies after three cells
    workspace.close()
    reopened = Workspace.open(database_url)
    stored = load_evaluation(reopened, evaluation_id)
    assert len(stored.cells) == 3 and not stored.finished and stored.status == "running"
    assert stored.plan.dataset.rows[0]["item"] == "=Quiche" and stored.options == {"max_new_tokens": 8}
    resumed = Model()
    for cell in run_evaluation(stored.plan, resumed, None, done=stored.done, batch_size=1):
        record_cell(reopened, evaluation_id, cell)
    assert resumed.calls == 1
    assert not record_cell(reopened, evaluation_id, score(plan, 0, 0, "again"))  # no duplicates
    set_status(reopened, evaluation_id, "finished")
    stored = load_evaluation(reopened, evaluation_id)
    assert stored.finished and stored.status == "finished" and len(stored.cells) == 4
    reopened.close()


def test_list_search_and_delete(workspace, plan):
    first = create_evaluation(workspace, "menu check", plan)
    second = create_evaluation(workspace, "other", plan)
    record_cell(workspace, second, score(plan, 0, 0, "Avoid"))
    rows = evaluations(workspace)
    assert [row.id for row in rows] == [second, first]
    assert rows[0].done == 1 and rows[0].total == 4 and rows[0].variants == ("mistake", "fixed")
    assert [row.id for row in evaluations(workspace, "MENU")] == [first]
    assert len(evaluations(workspace, "50%_off")) == 2  # searches the data too; % and _ are literal
    assert evaluations(workspace, "100%") == []
    delete_evaluation(workspace, second)
    assert [row.id for row in evaluations(workspace)] == [first]
    with pytest.raises(InputError, match=f"no evaluation {second}"):
        load_evaluation(workspace, second)
