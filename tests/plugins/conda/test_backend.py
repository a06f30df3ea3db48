"""The conda backend building real envs in-process with rattler from the local test channel.

Three envs are built once per module and shared by the tests (each build is a
few seconds, mostly bytecode compilation):

* ``dir_env``: from the directory channel, with a cold package cache;
* ``http_envs``: over HTTP with the now warm package cache (online), then,
  with the server stopped, a third env from cached repodata and packages only.

Failures only solve, so they take milliseconds.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from attrs import define

from runtimed.backend import BackendError, BuildRequest, ErrorKind
from runtimed.config import BackendConfig
from runtimed.envs.build import build_env
from runtimed.envs.envdir import Manifest
from runtimed_conda import CondaBackend
from runtimed_conda.solve import RepodataCache, solve_specs
from tests.support import conda_channel
from tests.support.conda_channel import ChannelServer, build_channel

PY_VER = f"{sys.version_info.major}.{sys.version_info.minor}"
PYC_TAG = sys.implementation.cache_tag  # "cpython-311"


@define
class Built:
    path: Path
    manifest: Manifest


@pytest.fixture(scope="module")
def channel() -> Path:
    return build_channel()


@pytest.fixture(scope="module")
def backend_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The backend cache (repodata + package cache) shared by this module's builds."""
    return tmp_path_factory.mktemp("conda-cache")


@pytest.fixture(scope="module")
def envs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("envs")


def build(backend: CondaBackend, path: Path, cache: Path, **config: object) -> Built:
    request = BuildRequest(env_id=path.name, path=path, config=BackendConfig(**config), cache_dir=cache)  # type: ignore[arg-type]
    return Built(path, build_env(backend, request))


def fails(path: Path, cache: Path, **config: object) -> BackendError:
    with pytest.raises(BackendError) as excinfo:
        build(CondaBackend(), path, cache, **config)
    return excinfo.value


@pytest.fixture(scope="module")
def dir_env(channel: Path, backend_cache: Path, envs_dir: Path) -> Built:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONDONTWRITEBYTECODE", "1")  # bytecode must be compiled explicitly anyway
        return build(CondaBackend(), envs_dir / "dir-env", backend_cache, channels=[str(channel)])


class _RequestLog(logging.Handler):
    """Paths the ChannelServer was asked for (it logs each request at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.paths: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if '"GET ' in message:
            self.paths.append(message.split('"GET ', 1)[1].split()[0])


@define
class HttpEnvs:
    online: Built
    offline: Built
    url: str
    requests: list[str]


@pytest.fixture(scope="module")
def http_envs(channel: Path, backend_cache: Path, envs_dir: Path, dir_env: Built) -> Iterator[HttpEnvs]:
    """Online over HTTP (package cache already warm from ``dir_env``), then offline."""
    logger = logging.getLogger("tests.support.conda_channel")
    handler, level = _RequestLog(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with ChannelServer(channel) as server:
            online = build(CondaBackend(), envs_dir / "http-online", backend_cache, channels=[server.url])
        requests = list(handler.paths)
        offline = build(CondaBackend(), envs_dir / "http-offline", backend_cache, channels=[server.url])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    yield HttpEnvs(online, offline, server.url, requests)


# ------------------------------------------------------------------ building


def test_manifest_records_every_installed_package(dir_env: Built, channel: Path) -> None:
    manifest = dir_env.manifest
    records = manifest.details["records"]
    by_name = {r["name"]: r for r in records}
    assert {"python", "ipykernel", "ipywidgets", "pyzmq", "tornado"} <= set(by_name)
    assert by_name["python"]["version"] == platform.python_version()
    for record in records:
        assert record["version"] and record["build"] and record["sha256"]
        assert record["channel"].rstrip("/") == channel.as_uri()
        assert record["url"].startswith(channel.as_uri() + "/")
    # One record per conda-meta entry, and packages are the conda records as name==version.
    assert len(records) == len(list((dir_env.path / "conda-meta").glob("*.json")))
    assert manifest.packages == [f"{r['name']}=={r['version']}" for r in records]
    assert manifest.env_type == "conda"
    assert manifest.spec_hash == CondaBackend().spec_hash(BackendConfig(channels=[str(channel)]))
    assert manifest.details["specs"] == ["python", "ipykernel", "ipywidgets"]
    assert manifest.details["repodata"] == "local"
    assert set(manifest.details["timings_s"]) == {"solve", "install"}
    assert {"link", "compile", "warmup"} <= set(manifest.details["bytecode"]["timings_s"])


def test_python_and_packages_come_from_the_prefix(dir_env: Built) -> None:
    python = Path(dir_env.manifest.python_path)
    assert python == dir_env.path / "bin" / "python"
    code = "import json, sys, ipykernel, zmq; print(json.dumps([sys.prefix, ipykernel.__file__, zmq.__file__]))"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CONDA", "VIRTUAL_ENV"))}
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    prefix, *modules = json.loads(out)
    assert Path(prefix) == dir_env.path
    assert all(Path(m).is_relative_to(dir_env.path) for m in modules)


def test_bytecode_is_compiled_for_stdlib_and_site_packages(dir_env: Built) -> None:
    lib = dir_env.path / "lib" / f"python{PY_VER}"
    assert (lib / "__pycache__" / f"os.{PYC_TAG}.pyc").is_file()
    assert (lib / "site-packages" / "ipykernel" / "__pycache__" / f"kernelapp.{PYC_TAG}.pyc").is_file()
    skipped = set(dir_env.manifest.details["bytecode"]["not_compiled"])
    missing = [
        str(py.relative_to(dir_env.path))
        for py in lib.rglob("*.py")
        if not (py.parent / "__pycache__" / f"{py.stem}.{PYC_TAG}.pyc").is_file()
        and str(py.relative_to(dir_env.path)) not in skipped
    ]
    assert missing == []


def test_warm_package_cache_hardlinks_and_downloads_nothing(http_envs: HttpEnvs, dir_env: Built) -> None:
    # Only repodata was fetched: every package came from the cache the first build filled.
    assert http_envs.requests, "the server was never asked"
    assert not [p for p in http_envs.requests if p.endswith((".conda", ".tar.bz2"))]
    assert http_envs.online.manifest.details["repodata"] == "online"
    # Unchanged package files are hardlinks of the same cached inode in every env.
    rel = Path("lib") / f"python{PY_VER}" / "site-packages" / "ipykernel" / "kernelapp.py"
    inodes = {(env.path / rel).stat().st_ino for env in (dir_env, http_envs.online, http_envs.offline)}
    assert len(inodes) == 1
    assert (dir_env.path / rel).stat().st_nlink >= 4  # package cache + three envs


def test_offline_first_builds_from_cached_repodata_with_the_channel_gone(http_envs: HttpEnvs) -> None:
    manifest = http_envs.offline.manifest
    assert manifest.details["repodata"] == "offline"
    assert {r["url"] for r in manifest.details["records"]} == {
        r["url"] for r in http_envs.online.manifest.details["records"]
    }
    assert all(r["url"].startswith(http_envs.url + "/") for r in manifest.details["records"])
    assert Path(manifest.python_path).exists()


class _NoCacheHandler(conda_channel._QuietHandler):
    """Responses say ``Cache-Control: no-cache``: rattler's own HTTP cache must revalidate."""

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()


def test_offline_within_ttl_refresh_after_it_and_stale_cache_when_down(
    channel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A channel whose HTTP caching says "always revalidate" (conda-forge's max-age is
    # short too): without the TTL stamp every solve would need the network.
    monkeypatch.setattr(conda_channel, "_QuietHandler", _NoCacheHandler)
    logger = logging.getLogger("tests.support.conda_channel")
    handler = _RequestLog()
    monkeypatch.setattr(logger, "level", logging.DEBUG)
    logger.addHandler(handler)
    specs = ["python", "ipykernel"]
    fresh = RepodataCache(tmp_path / "repodata")
    expired = RepodataCache(tmp_path / "repodata", ttl_s=0)
    try:
        with ChannelServer(channel) as server:
            assert solve_specs([server.url], specs, fresh).mode == "online"  # nothing cached yet
            handler.paths.clear()
            assert solve_specs([server.url], specs, fresh).mode == "offline"
            assert handler.paths == []  # within the TTL: not a single request
            # Past the TTL: asked again. This server answers 304 without an ETag, which
            # rattler 0.28 rejects (conda/rattler#2719); the backend then re-fetches.
            assert solve_specs([server.url], specs, expired).mode == "refetched"
            assert any(p.endswith("repodata_shards.msgpack.zst") for p in handler.paths)
            # Shards for rt-hello were never fetched: the offline attempt misses, the channel answers.
            assert solve_specs([server.url], ["rt-hello"], fresh).mode == "refetched"
    finally:
        logger.removeHandler(handler)
    # The channel is gone. Within the TTL nothing changes ...
    assert solve_specs([server.url], specs, fresh).mode == "offline"
    # ... past it the refresh fails and the stale cache answers ...
    result = solve_specs([server.url], specs, expired)
    assert result.mode == "stale-cache"
    assert {"python", "ipykernel"} <= {r.name.normalized for r in result.records}
    # ... unless it cannot: then the network error is what the user sees.
    with pytest.raises(BackendError) as excinfo:
        solve_specs([server.url], ["rt-needs-missing"], expired)
    assert excinfo.value.kind == ErrorKind.NETWORK
    assert server.url in excinfo.value.message


# ------------------------------------------------------------------ failures


def test_unsolvable_spec_names_the_missing_dependency(channel: Path, tmp_path: Path) -> None:
    error = fails(tmp_path / "env", tmp_path / "cache", channels=[str(channel)], packages=["rt-needs-missing"])
    assert error.kind == ErrorKind.INVALID_PACKAGE
    assert error.package == "rt-does-not-exist"
    assert "rt-needs-missing 1.0.0 would require" in error.message
    assert not (tmp_path / "env").exists()


def test_unknown_package_is_named(channel: Path, tmp_path: Path) -> None:
    error = fails(tmp_path / "env", tmp_path / "cache", channels=[channel.as_uri()], packages=["totally-unknown-pkg"])
    assert (error.kind, error.package) == (ErrorKind.INVALID_PACKAGE, "totally-unknown-pkg")


def test_unparsable_spec_is_named(channel: Path, tmp_path: Path) -> None:
    error = fails(tmp_path / "env", tmp_path / "cache", channels=[str(channel)], packages=["numpy>>1"])
    assert (error.kind, error.package) == (ErrorKind.INVALID_PACKAGE, "numpy>>1")


@pytest.mark.parametrize(
    ("channel_url", "shown"),
    [
        ("http://127.0.0.1:9", "http://127.0.0.1:9/"),  # connection refused
        ("http://runtimed-test.invalid", "http://runtimed-test.invalid/"),  # no DNS, like conda-forge here
    ],
)
def test_unreachable_channel_is_a_network_error(channel_url: str, shown: str, tmp_path: Path) -> None:
    error = fails(tmp_path / "env", tmp_path / "cache", channels=[channel_url])
    assert error.kind == ErrorKind.NETWORK
    assert shown in error.message.splitlines()[0]


def test_missing_directory_channel_is_a_setup_failure(tmp_path: Path) -> None:
    error = fails(tmp_path / "env", tmp_path / "cache", channels=[str(tmp_path / "no-such-channel")])
    assert error.kind == ErrorKind.SETUP_FAILED
    assert "no-such-channel" in error.message


def test_no_channels_is_a_setup_failure(tmp_path: Path) -> None:
    error = fails(tmp_path / "env", tmp_path / "cache", channels=[])
    assert error.kind == ErrorKind.SETUP_FAILED
    assert "no conda channels" in error.message


def test_availability_reports_py_rattler() -> None:
    availability = CondaBackend().availability()
    assert availability.ok and availability.detail and availability.detail.startswith("py-rattler 0.")
