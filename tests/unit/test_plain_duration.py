"""Times as a reviewer reads them: seconds under a minute, then minutes."""

import pytest

from salience.core.text import plain_duration


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0.2, "0 s"),
        (59.4, "59 s"),
        (80, "1 min 20 s"),
        (120, "2 min"),
        (2248, "37 min"),
        (3600, "1 h 00 min"),
        (-3, "0 s"),
    ],
)
def test_plain_duration(seconds, words):
    assert plain_duration(seconds) == words
