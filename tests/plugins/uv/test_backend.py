"""The uv backend building real envs in-process (real uv, the session's warm uv cache)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runtimed.backend import BackendError, BuildRequest
from runtimed.config import BackendConfig
from runtimed.envs.build import build_env
from runtimed.envs.envdir import read_manifest
from runtimed_uv import UvBackend


def _request(tmp_path: Path, **config: object) -> BuildRequest:
    return BuildRequest(env_id="t1", path=tmp_path / "env", config=BackendConfig(**config), cache_dir=tmp_path / "c")  # type: ignore[arg-type]


@pytest.fixture
def uv_env(uv_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))


@pytest.mark.usefixtures("uv_env")
def test_builds_a_complete_warm_env(tmp_path: Path) -> None:
    request = _request(tmp_path)
    progress: list[str] = []
    request = BuildRequest(request.env_id, request.path, request.config, request.cache_dir, progress=progress.append)
    manifest = build_env(UvBackend(), request)
    assert read_manifest(request.path) == manifest
    assert manifest.spec_hash == UvBackend().spec_hash(request.config)
    assert manifest.python_path == str(request.path / "bin" / "python")
    assert any(p.startswith("ipywidgets==") for p in manifest.packages)
    assert "uv pip install --offline" in progress  # the warm cache answered offline
    assert "uv pip install (online)" not in progress
    pycs = list((request.path / "lib").rglob("ipykernel/__pycache__/*.pyc"))
    assert len(pycs) > 10
    subprocess.run([manifest.python_path, "-c", "import ipykernel"], check=True)


@pytest.mark.usefixtures("uv_env")
def test_unknown_package_is_invalid_package(tmp_path: Path) -> None:
    with pytest.raises(BackendError) as info:
        build_env(UvBackend(), _request(tmp_path, packages=["rt-no-such-package-for-runtimed"]))
    assert info.value.kind == "invalid_package"
    assert info.value.package == "rt-no-such-package-for-runtimed"


def test_unreachable_index_is_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "cold-cache"))  # nothing cached: must go online
    monkeypatch.setenv("UV_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    with pytest.raises(BackendError) as info:
        build_env(UvBackend(), _request(tmp_path))
    assert info.value.kind == "network"
    assert "127.0.0.1:9" in info.value.message


@pytest.mark.usefixtures("uv_env")
def test_missing_python_is_tool_missing(tmp_path: Path) -> None:
    with pytest.raises(BackendError) as info:
        build_env(UvBackend(), _request(tmp_path, python="/nonexistent/python3"))
    assert info.value.kind == "tool_missing"


def test_spec_hash_follows_what_decides_the_contents() -> None:
    backend = UvBackend()
    base = backend.spec_hash(BackendConfig())
    assert backend.spec_hash(BackendConfig(pool_size=7, concurrency=3)) == base
    assert backend.spec_hash(BackendConfig(packages=["numpy"])) != base
    assert backend.spec_hash(BackendConfig(python="3.12")) != base
