"""Evaluation: prompt variants run over a table of inputs with checks (`runs`), and the
statistics of blind side-by-side reviews (`review_stats`).

May import every subpackage below it: report, model, attribution, prompts, core."""

__all__ = [  # the public modules; importing the package imports none of them
    "review_stats",
    "runs",
]
