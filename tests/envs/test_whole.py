"""What makes an env whole (``Backend.whole_paths``): recorded in the manifest at build
time, checked with a few ``stat`` calls at take; a pooled env missing a part is deleted."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import ClassVar

import pytest

from runtimed.backend import Backend, BuildRequest
from runtimed.config import BackendConfig
from runtimed.core.records import Manifest, ReadyEnv
from runtimed.daemon.taking import looks_whole
from runtimed.envs.build import build_env
from runtimed.envs.envdir import write_manifest
from tests.support.daemon import DaemonProcess


def _site(env: Path) -> Path:
    return Path(sysconfig.get_path("purelib", vars={"base": str(env), "platbase": str(env)}))


def test_default_whole_paths_are_the_python_and_ipykernel_with_its_launcher(tmp_path: Path) -> None:
    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    site = _site(env)
    (site / "ipykernel").mkdir()
    (site / "ipykernel" / "__init__.py").write_text("")
    (site / "ipykernel_launcher.py").write_text("")
    relsite = site.relative_to(env)
    assert Backend().whole_paths(env) == [
        "bin/python",
        str(relsite / "ipykernel_launcher.py"),
        str(relsite / "ipykernel" / "__init__.py"),
    ]


class _OwnParts(Backend):
    """A backend with its own idea of a whole env: its python and a kernel spec file."""

    name: ClassVar[str] = "own"
    warmup_modules: ClassVar[tuple[str, ...]] = ("json",)

    def create(self, request: BuildRequest) -> None:
        (request.path / "bin").mkdir(parents=True)
        os.symlink(sys.executable, request.path / "bin" / "python")
        (request.path / "share").mkdir()
        (request.path / "share" / "kernel.json").write_text("{}")

    def whole_paths(self, path: Path) -> list[str]:
        return ["bin/python", "share/kernel.json"]

    def installed_packages(self, path: Path) -> list[str]:
        return []


def test_a_backend_supplies_its_own_whole_paths_recorded_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "env"
    request = BuildRequest(env_id="x", path=path, config=BackendConfig(), cache_dir=tmp_path / "cache")
    manifest = build_env(_OwnParts(), request)
    assert manifest.whole == ["bin/python", "share/kernel.json"]
    env = ReadyEnv(path=path, manifest=manifest)
    assert looks_whole(env) is None
    (path / "share" / "kernel.json").unlink()
    assert looks_whole(env) == "share/kernel.json is gone"


def test_a_manifest_from_before_whole_was_recorded_has_its_python_checked(tmp_path: Path) -> None:
    path = tmp_path / "env"
    (path / "bin").mkdir(parents=True)
    os.symlink(sys.executable, path / "bin" / "python")
    manifest = Manifest(env_type="uv", id="x", spec_hash="h", python_path=str(path / "bin" / "python"))
    write_manifest(path, manifest)
    env = ReadyEnv(path=path, manifest=manifest)
    assert looks_whole(env) is None
    (path / "bin" / "python").unlink()
    assert looks_whole(env) == f"{path / 'bin' / 'python'} is gone"


@pytest.mark.slow
def test_a_pooled_env_whose_ipykernel_was_deleted_is_deleted_not_handed_out(
    daemon_factory: type[DaemonProcess],
) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\n").start()
    daemon.wait_pool("uv", 1)
    (broken,) = (daemon.cache_dir / "envs").iterdir()
    (ipykernel,) = broken.glob("lib/python*/site-packages/ipykernel")
    shutil.rmtree(ipykernel)
    with daemon.client() as c:
        env = c.take("uv", wait_s=120, keep=True)
    assert env is not None
    assert Path(env.venv_path) != broken
    assert not broken.exists()  # deleted, not left for a later take
    subprocess.run([env.python_path, "-c", "import ipykernel"], check=True)
    shutil.rmtree(env.venv_path)  # kept: ours to delete
