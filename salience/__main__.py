"""``python -m salience``: see `salience.cli.commands`."""

import sys

from salience.cli.commands import main

sys.exit(main())
