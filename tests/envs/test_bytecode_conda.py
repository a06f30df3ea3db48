"""Bytecode sharing between real conda envs from the local channel (rattler hardlinks from ``pkgs/``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtimed.backend import BuildRequest
from runtimed.config import BackendConfig
from runtimed.envs.build import build_env
from runtimed.envs.envdir import Manifest
from runtimed_conda import CondaBackend
from tests.support.conda_channel import build_channel

TAG = sys.implementation.cache_tag
LIB = Path("lib") / f"python{sys.version_info.major}.{sys.version_info.minor}"


def pyc_of(source: Path) -> Path:
    return source.parent / "__pycache__" / f"{source.stem}.{TAG}.pyc"


@pytest.fixture(scope="module")
def conda_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Manifest, Manifest]:
    channel = build_channel()
    root = tmp_path_factory.mktemp("conda-sharing")
    paths = root / "envs" / "a", root / "envs" / "b"
    manifests = []
    for path in paths:
        request = BuildRequest(
            env_id=path.name,
            path=path,
            config=BackendConfig(channels=[str(channel)]),
            cache_dir=root / "backends" / "conda",
            bytecode_store=root / "bytecode",
        )
        manifests.append(build_env(CondaBackend(), request))
    return paths[0], paths[1], manifests[0], manifests[1]


def test_conda_envs_share_stdlib_and_site_packages_bytecode(conda_pair: tuple[Path, Path, Manifest, Manifest]) -> None:
    a, b, manifest_a, manifest_b = conda_pair
    for rel in (LIB / "os.py", LIB / "site-packages" / "ipykernel" / "kernelapp.py"):
        assert (a / rel).stat().st_ino == (b / rel).stat().st_ino  # hardlinked from pkgs/
        assert pyc_of(a / rel).stat().st_ino == pyc_of(b / rel).stat().st_ino
    first, second = manifest_a.details["bytecode"], manifest_b.details["bytecode"]
    assert first["mode"] == second["mode"] == "shared"
    assert second["compiled"] == 0 and second["shared"] == first["compiled"] > 1000


def test_prefix_rewritten_sources_are_compiled_per_env(conda_pair: tuple[Path, Path, Manifest, Manifest]) -> None:
    a, b, _manifest_a, manifest_b = conda_pair
    own = [p for p in (b / LIB).glob("*.py") if p.stat().st_nlink == 1]  # e.g. _sysconfigdata_*.py
    assert own, "the repackaged python declares prefix placeholders in some .py files"
    assert manifest_b.details["bytecode"]["per_env"] >= len(own)
    for source in own:
        assert pyc_of(source).stat().st_nlink == 1
        assert pyc_of(source).stat().st_ino != pyc_of(a / source.relative_to(b)).stat().st_ino
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CONDA", "VIRTUAL_ENV"))}
    code = "import sysconfig, ipykernel.kernelapp; print(sysconfig.get_config_var('prefix'))"
    out = subprocess.run([str(b / "bin" / "python"), "-c", code], capture_output=True, text=True, env=clean, check=True)
    assert out.stdout.strip() == str(b)
