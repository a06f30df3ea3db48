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

# A backend that needs no tool: its env is a dir whose python is a symlink to the test
# interpreter, built in milliseconds. MODE makes it misbehave for fault injection.
TOY_BACKEND = """
import ctypes, os, subprocess, sys, time
from pathlib import Path
from runtimed.backend import Backend, BackendError
from runtimed.envs.plugins import hookimpl

MODE = "{mode}"
if MODE == "import_crash":
    os._exit(7)


def _child(request):
    # A grandchild that would outlive a careless supervisor; its command line names the env.
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)", "toy-child", str(request.path)])


class ToyBackend(Backend):
    name = "{name}"
    warmup_modules = ("json",)

    def create(self, request):
        (request.path / "bin").mkdir(parents=True)
        os.symlink(sys.executable, request.path / "bin" / "python")
        if MODE == "fail":
            raise BackendError("invalid_package", "no such package: toy-missing", package="toy-missing")
        if MODE == "hang":
            _child(request)
            time.sleep(3600)
        if MODE == "crash":
            os._exit(1)
        if MODE == "segv":
            ctypes.string_at(0)
        if MODE == "orphan":
            _child(request)
            time.sleep(0.3)
            os._exit(1)
        if MODE == "hog":
            hog = bytearray(400 * 1024 * 1024)
            for i in range(0, len(hog), 4096):
                hog[i] = 1
            time.sleep(3600)
        if MODE == "slow":
            time.sleep(0.5)
        if MODE == "slow3":
            time.sleep(3)
        if MODE == "installing":  # stays in the installing phase for good
            from runtimed.backend import BuildPhase

            request.phase(BuildPhase.INSTALLING)
            request.progress("toy install")
            time.sleep(3600)

    def prepare(self, cache_dir):
        if MODE == "stuck_prepare":  # never reads its jobs, so never sees stdin close
            time.sleep(3600)

    def warm(self, request):
        pass

    def installed_packages(self, path):
        return ["toy==1.0"]


@hookimpl
def runtimed_backend():
    return ToyBackend()
"""


def toy_backend(name: str, mode: str = "") -> str:
    """Source of a toy backend plugin named ``name`` that behaves as ``mode`` says."""
    return TOY_BACKEND.replace("{name}", name).replace("{mode}", mode)


def install_toys(site: Path, **modes: str) -> Path:
    """Install one toy plugin per ``name=mode`` (name dashes given as underscores)."""
    for name, mode in modes.items():
        install_plugin(site, name.replace("_", "-"), toy_backend(name.replace("_", "-"), mode))
    return site
