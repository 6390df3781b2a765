"""The command line: ``python -m salience {generate,explain,prepare,serve,evaluate}``.

The top of the engine: may import every other subpackage."""

__all__ = [  # the public modules; importing the package imports none of them
    "commands",
    "evaluate_command",
    "open_model",
]
