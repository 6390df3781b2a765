"""``python -m salience``: see `salience.cli`."""

import sys

from salience.cli import main

sys.exit(main())
