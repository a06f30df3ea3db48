"""Scripts run by an *env's* python (or a front end's), by path: standard library (and
ipykernel) only, never runtimed, so they work on every Python an env may have.
Importing this package gives their paths; it never imports them.
"""

from pathlib import Path

__all__ = ["KERNEL_HOST", "KERNEL_LAUNCHER", "PYC_COMPILE"]

_HERE = Path(__file__).parent
KERNEL_HOST = _HERE / "kernel_host.py"
KERNEL_LAUNCHER = _HERE / "kernel_launcher.py"
PYC_COMPILE = _HERE / "pyc_compile.py"
