"""Attribution: the registry of salience methods, Deletion (occlusion and its estimate),
agreement between methods, and the faithfulness checks.

May import `salience.prompts` and `salience.core`; runs on a forward pass it is given (no
TensorFlow import here)."""

__all__ = [  # the public modules; importing the package imports none of them
    "agreement",
    "estimate",
    "faithfulness",
    "methods",
    "occlusion",
]
