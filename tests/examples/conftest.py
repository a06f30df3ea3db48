"""The pixi example is a distribution of its own, not installed by the test command:
its tests import it from its source directory when it is not installed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "runtimed-plugin-pixi"

if importlib.util.find_spec("runtimed_pixi") is None:
    sys.path.insert(0, str(EXAMPLE))


@pytest.fixture(scope="session")
def pixi_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example installed as a real distribution (its entry point) into a dir for PYTHONPATH."""
    site = tmp_path_factory.mktemp("pixi-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
         str(EXAMPLE)],
        check=True,
    )  # fmt: skip
    return site
