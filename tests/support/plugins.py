"""Test-only backend plugins, installed for real into a temp dir put on PYTHONPATH.

Each gets a ``.dist-info`` with an ``entry_points.txt`` in group ``runtimed``, so
discovery sees it exactly as it sees a plugin installed with pip.
"""

from __future__ import annotations

import textwrap
from pathlib import Path


def install_plugin(site: Path, name: str, module_source: str, *, distribution: str | None = None) -> Path:
    """Write module ``runtimed_test_<name>`` and its dist-info into ``site``; returns ``site``."""
    dist = distribution or f"runtimed-test-{name}"
    module = f"runtimed_test_{name.replace('-', '_')}"
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(module_source))
    info = site / f"{dist.replace('-', '_')}-0.0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(f"[runtimed]\n{name} = {module}\n")
    return site


BROKEN_IMPORT = """
raise ImportError("this plugin is broken on purpose (missing dependency 'frobnicate')")
"""

# A backend that works without any tool: copies nothing, just makes a venv-like dir
# whose python is a symlink to the test interpreter. Parametrised by env vars so the
# fault-injection tests can make it misbehave.
TOY_BACKEND = """
import os, sys, time
from pathlib import Path
from runtimed.backend import Backend, BackendError
from runtimed.plugins import hookimpl


class ToyBackend(Backend):
    name = "{name}"
    warmup_modules = ("json",)

    def create(self, request):
        (request.path / "bin").mkdir(parents=True)
        os.symlink(sys.executable, request.path / "bin" / "python")
        mode = os.environ.get("TOY_MODE", "")
        if mode == "fail":
            raise BackendError("invalid_package", "no such package: toy-missing", package="toy-missing")
        if mode == "hang":
            time.sleep(3600)

    def warm(self, request):
        pass

    def installed_packages(self, path):
        return ["toy==1.0"]


@hookimpl
def runtimed_backend():
    return ToyBackend()
"""


def toy_backend(name: str) -> str:
    return TOY_BACKEND.replace("{name}", name)
