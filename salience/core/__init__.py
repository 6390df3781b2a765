"""The shared vocabulary of the engine: user-facing errors, plain result types, text helpers.

Pure Python; imports nothing else from the engine. See docs/DESIGN.md (the package map)."""

__all__ = [  # the public modules; importing the package imports none of them
    "errors",
    "text",
    "types",
]
