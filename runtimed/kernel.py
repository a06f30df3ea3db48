"""``python -m runtimed.kernel``: the legacy launcher named by kernelspecs already installed;
kept for compatibility. It lives in :mod:`runtimed.kernels.specs`."""

import sys

from runtimed.kernels.specs import main

if __name__ == "__main__":
    sys.exit(main())
