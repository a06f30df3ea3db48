"""``python -m runtimed.worker BACKEND``: kept for compatibility (stray-process matching,
older daemons); the worker lives in :mod:`runtimed.workers.child`."""

import sys

from runtimed.workers.child import main

if __name__ == "__main__":
    sys.exit(main())
