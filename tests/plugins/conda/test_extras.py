"""Extra packages into a built conda env (``install_extras``), from the local test channel:
the installed records are kept, the extras added, the manifest rewritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtimed.backend import BackendError, BuildRequest, ErrorKind, ExtrasRequest
from runtimed.config import BackendConfig
from runtimed.core.records import manifest_extras
from runtimed.envs.build import build_env
from runtimed.envs.envdir import read_manifest
from runtimed.envs.extras import add_extras
from runtimed_conda import CondaBackend
from tests.support.conda_channel import build_channel

pytestmark = pytest.mark.slow


def _built(tmp_path: Path, name: str) -> tuple[Path, BackendConfig, Path]:
    config = BackendConfig(channels=[str(build_channel())])
    cache = tmp_path / "cache"
    path = tmp_path / name
    build_env(CondaBackend(), BuildRequest(env_id=name, path=path, config=config, cache_dir=cache))
    return path, config, cache


def _records(path: Path) -> set[str]:
    return {p.name for p in (path / "conda-meta").glob("*.json")}


def test_extras_are_added_and_the_installed_records_kept(tmp_path: Path) -> None:
    path, config, cache = _built(tmp_path, "env")
    before = _records(path)
    request = ExtrasRequest(path=path, packages=("rt-hello",), config=config, cache_dir=cache)
    manifest = add_extras(CondaBackend(), request, key="k1")
    after = _records(path)
    assert before < after and [n for n in after - before] == ["rt-hello-1.0.0-0.json"]
    assert (path / "share" / "rt-hello" / "hello.txt").is_file()
    assert manifest_extras(manifest) == ["rt-hello"] and "rt-hello==1.0.0" in manifest.packages
    assert manifest.spec_hash.endswith("+k1") and read_manifest(path) == manifest
    assert any(r["name"] == "rt-hello" for r in manifest.details["records"])


def test_an_unknown_conda_package_is_named(tmp_path: Path) -> None:
    path, config, cache = _built(tmp_path, "env")
    request = ExtrasRequest(path=path, packages=("rt-no-such-package",), config=config, cache_dir=cache)
    with pytest.raises(BackendError) as caught:
        add_extras(CondaBackend(), request, key="k2")
    assert caught.value.kind == ErrorKind.INVALID_PACKAGE and caught.value.package == "rt-no-such-package"
