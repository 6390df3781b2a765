"""One colour scale: salience.report.palette computes every cell's colour; the heatmap and exports only use it."""

import pytest

from components import heatmap as heatmap_module
from salience.report.palette import NEGATIVE_HEX, POSITIVE_HEX, colour, legend_gradient, paint, text_colour


def test_scale_ends_and_middle():
    assert colour(0, True) == colour(0, False) == "rgb(255,255,255)"
    assert colour(1, True) == "rgb(0,150,136)" and POSITIVE_HEX == "#009688"
    assert colour(-1, True) == "rgb(230,97,0)" and NEGATIVE_HEX == "#e66100"
    assert colour(1, False) == "rgb(109,40,217)"
    assert colour(0.5, True) == "rgb(128,202,196)"
    assert colour(-1, False) == colour(1, False)  # unsigned: strength only


def test_intensity_brightens_and_clamps():
    assert colour(0.5, True, intensity=2.0) == colour(1, True)
    assert colour(5, True) == colour(1, True)
    assert text_colour(0.5) == "#111" and text_colour(0.5, intensity=2.0) == "#fff"
    assert legend_gradient(True) == f"linear-gradient(90deg, {colour(-1, True)}, #fff, {colour(1, True)})"


def test_paint_colours_prompt_cells_and_scored_output_only():
    cells = [
        {"text": "a", "value": 0.0, "output": False},
        {"text": "b", "value": -1.0, "output": False},
        {"text": "c", "value": 0.0, "output": True},
        {"text": "d", "value": 0.7, "output": True},
    ]
    painted = paint(cells, signed=True)
    assert [c["background"] for c in painted] == [colour(0, True), colour(-1, True), "", colour(0.7, True)]
    assert [c["color"] for c in painted] == ["#111", "#fff", "", "#fff"]
    assert cells[0].keys() == {"text", "value", "output"}  # the input is not changed


def test_heatmap_component_sends_computed_colours(monkeypatch):
    sent = {}
    monkeypatch.setattr(heatmap_module, "_heatmap", lambda key, data, **_: sent.update(data))
    cells = [{"text": "x", "value": 0.5, "output": False, "start": 0, "end": 1, "score": 1.0, "id": 1}]
    heatmap_module.heatmap(
        cells,
        method="grad_dot_input",
        signed=True,
        scale=1.0,
        intensity=2.0,
        selection=None,
        status="",
        stale=False,
        key="k",
        on_select=lambda: None,
    )
    assert sent["cells"][0]["background"] == colour(1, True) and sent["gradient"] == legend_gradient(True)


@pytest.mark.parametrize("arithmetic", ["rgb(", "function colour", "textColour"])
def test_heatmap_javascript_computes_no_colour(arithmetic):
    assert arithmetic not in heatmap_module._JS
