"""``python -m runtimed.cli`` (and ``python -m runtimed``) run the CLI."""

import sys

from runtimed.cli import main

sys.exit(main())
