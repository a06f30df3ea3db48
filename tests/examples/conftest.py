"""The pixi example is a distribution of its own, not installed by the test command:
its tests import it from its source directory when it is not installed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "runtimed-plugin-pixi"

if importlib.util.find_spec("runtimed_pixi") is None:
    sys.path.insert(0, str(EXAMPLE))
