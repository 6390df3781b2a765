"""Serving: the engine as a Ray Serve deployment, its HTTP client (`RemoteModel`), the wire
format and who may use the engine.

May import every subpackage below it; the client (`remote`) imports no TensorFlow."""

__all__ = [  # the public modules; importing the package imports none of them
    "access",
    "deployment",
    "remote",
    "wire",
]
