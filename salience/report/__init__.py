"""Reports: display-ready views, the one colour palette, plain-line readings ("what if I
delete this?"), exports (HTML, PNG, CSV, JSON) and the explain payload.

May import `salience.model`, `salience.attribution`, `salience.prompts` and `salience.core`."""

__all__ = [  # the public modules; importing the package imports none of them
    "explain",
    "export",
    "palette",
    "views",
    "whatif",
]
