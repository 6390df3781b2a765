"""Prompts: templates and their slots, variants, sample prompts, segments, roll-up by slot,
plain-words places, prompt-variant comparison and the generated realistic prompt set.

Pure Python; may import `salience.core` only."""

__all__ = [  # the public modules; importing the package imports none of them
    "describe",
    "realistic",
    "rollup",
    "samples",
    "segments",
    "templates",
    "variant",
    "variant_comparison",
]
