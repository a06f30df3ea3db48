"""The pixi plugin building real envs with py-rattler (no pixi binary): a pool env, then
pixi workspaces installed into pool envs through runtimed's extras path (``add_extras``:
install, bytecode, warm-up import of ipykernel, manifest), from the local test channel on
disk and over HTTP, with [pypi-dependencies] from PyPI through uv.

``rt-pinned`` comes from a tiny second channel in versions 1.0.0 and 2.0.0: a solve picks
2.0.0, so 1.0.0 shows that a pixi.lock was followed. Likewise six 1.16.0 from a lock
(a solve would pick a newer six).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from attrs import define

from runtimed.backend import BackendError, BuildRequest, ErrorKind, ExtrasRequest, ProjectSpec
from runtimed.config import BackendConfig
from runtimed.envs.build import build_env
from runtimed.envs.envdir import Manifest
from runtimed.envs.extras import add_extras
from runtimed_pixi import PixiBackend
from runtimed_pixi.conda import current_platform, solve
from tests.examples.pixi_lock import SIX_1_16, LockedWheel, conda_entry, write_lock, write_manifest
from tests.support.conda_channel import ChannelServer, build_channel
from tests.support.kernel import execute_in_kernel
from tests.support.tiny_channel import build_tiny_channel, installed_version

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(current_platform() != "linux-64", reason="the test channel is linux-64"),
]


@define(frozen=True)
class Channels:
    main: str  # python, ipykernel, ipywidgets, rt-hello, ...
    tiny: str  # rt-pinned 1.0.0 and 2.0.0


@pytest.fixture(scope="module")
def on_disk(tmp_path_factory: pytest.TempPathFactory) -> Channels:
    tiny = build_tiny_channel(tmp_path_factory.mktemp("tiny") / "channel", {"rt-pinned": ["1.0.0", "2.0.0"]})
    return Channels(str(build_channel()), str(tiny))


@pytest.fixture(scope="module")
def over_http(on_disk: Channels) -> Iterator[Channels]:
    with ChannelServer(Path(on_disk.main)) as main, ChannelServer(Path(on_disk.tiny)) as tiny:
        yield Channels(main.url, tiny.url)


@pytest.fixture(autouse=True)
def _uv_cache(uv_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's package cache and bytecode store: each env after the first links its
    files and their bytecode instead of compiling (a test of its own uses a cold cache)."""
    return tmp_path_factory.mktemp("pixi-shared")


@define(frozen=True)
class Env:
    path: Path
    config: BackendConfig
    cache: Path
    manifest: Manifest
    store: Path

    def run(self, code: str) -> str:
        python = PixiBackend().python_path(self.path)
        return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()

    def install(self, project: ProjectSpec | None = None, packages: Sequence[str] = ()) -> Manifest:
        request = ExtrasRequest(self.path, tuple(packages), self.config, self.cache, project=project)
        return add_extras(PixiBackend(), request, key="project", bytecode_store=self.store)


def pool_env(tmp_path: Path, channels: Channels, packages: Sequence[str] = (), shared: Path | None = None) -> Env:
    """A base env of a pixi pool (python, ipykernel, ipywidgets, ``packages``), from the main
    channel (and the tiny one when ``packages`` are asked for)."""
    config = BackendConfig(channels=[channels.main, *([channels.tiny] if packages else [])], packages=list(packages))
    root = shared or tmp_path
    cache, store, path = root / "cache", root / "bytecode", tmp_path / "env"
    request = BuildRequest(env_id="env", path=path, config=config, cache_dir=cache, bytecode_store=store)
    return Env(path, config, cache, build_env(PixiBackend(), request), store)


def workspace(root: Path, channels: Channels, dependencies: str, pypi: str = "") -> ProjectSpec:
    text = f"""
[workspace]
name = "demo"
channels = ["{channels.main}", "{channels.tiny}"]
platforms = ["linux-64"]

[dependencies]
{dependencies}

[pypi-dependencies]
{pypi}
"""
    spec = PixiBackend().read_project(write_manifest(root, text))
    assert spec is not None
    return spec


def lock(root: Path, channels: Channels, specs: Sequence[str], wheels: Sequence[LockedWheel] = ()) -> Path:
    """A pixi.lock (version 6) of what rattler solves for ``specs``."""
    records = solve([channels.main, channels.tiny], specs, root / "lock-solve-cache")
    return write_lock(root, [f"{channels.main}/", f"{channels.tiny}/"], [conda_entry(r) for r in records], wheels)


def inode(path: Path) -> int:
    return path.stat().st_ino


# ------------------------------------------------------------------ pool mode


def test_a_pool_env_is_built_with_rattler(tmp_path: Path, on_disk: Channels, shared: Path) -> None:
    env = pool_env(tmp_path, on_disk, shared=shared)
    names = {p.split("==")[0] for p in env.manifest.packages}
    assert {"python", "ipykernel", "ipywidgets", "pyzmq"} <= names
    assert env.manifest.env_type == "pixi"
    assert env.path / "bin" / "python" == PixiBackend().python_path(env.path)
    assert {r["name"] for r in env.manifest.details["records"]} >= {"python", "ipykernel"}  # type: ignore[union-attr]
    assert PixiBackend().activation(env.path)["CONDA_PREFIX"] == str(env.path)
    assert env.run("import ipykernel, sys; print(sys.prefix)") == str(env.path)


def test_stale_repodata_is_fetched_again_and_used_when_the_channel_is_gone(tmp_path: Path) -> None:
    """Over HTTP, with repodata that was just modified (so rattler's HTTP cache holds it
    fresh for a moment only): a later solve revalidates it, and the static server's
    ``304`` without an ETag, which rattler 0.28 rejects, leads to a fetch without the
    cache; with the server stopped, the cached repodata still solves."""
    channel = build_tiny_channel(tmp_path / "channel", {"rt-pinned": ["1.0.0"]})
    for repodata in channel.glob("*/repodata.json"):
        os.utime(repodata, (time.time() - 1, time.time() - 1))  # fresh for ~0.1 s
    cache = tmp_path / "cache"
    with ChannelServer(channel) as server:
        assert [r.name.normalized for r in solve([server.url], ["rt-pinned"], cache)] == ["rt-pinned"]
        time.sleep(0.5)  # stale now: the next solve asks the server
        assert len(solve([server.url], ["rt-pinned"], cache)) == 1
    time.sleep(0.5)
    assert len(solve([server.url], ["rt-pinned"], cache)) == 1  # nothing answers


# ------------------------------------------------------------------ workspaces


def test_a_workspace_without_a_lock_is_solved(tmp_path: Path, on_disk: Channels, shared: Path) -> None:
    env = pool_env(tmp_path, on_disk, shared=shared)
    spec = workspace(tmp_path / "ws", on_disk, 'rt-pinned = "*"', 'six = "*"')
    manifest = env.install(spec)
    assert installed_version(env.path, "rt-pinned") == "2.0.0"  # the newest: solved
    assert env.run("import six, ipykernel; print(six.__file__)").startswith(str(env.path))
    assert "rt-pinned==2.0.0" in manifest.packages and any(p.startswith("six==") for p in manifest.packages)


def test_a_workspace_keeps_what_the_pool_env_has_where_it_can(tmp_path: Path, on_disk: Channels, shared: Path) -> None:
    env = pool_env(tmp_path, on_disk, ["rt-pinned ==1.0.0"], shared)
    python = inode(env.path / "bin" / "python")
    env.install(workspace(tmp_path / "ws", on_disk, 'rt-pinned = "*"\nrt-hello = "*"'))
    assert installed_version(env.path, "rt-pinned") == "1.0.0"  # installed, and allowed: kept
    assert (env.path / "share" / "rt-hello" / "hello.txt").is_file()
    assert inode(env.path / "bin" / "python") == python  # not relinked


def test_a_workspace_with_a_lock_installs_exactly_the_locked_packages(tmp_path: Path, over_http: Channels) -> None:
    """Over HTTP: the lock's conda URLs are the served channels', the wheel is PyPI's."""
    root = tmp_path / "ws"
    spec_text = ('rt-pinned = "*"', 'six = "*"')
    root.mkdir()
    lock(root, over_http, ["python", "ipykernel", "ipywidgets", "rt-pinned ==1.0.0"], [SIX_1_16])
    spec = workspace(root, over_http, *spec_text)
    assert spec.locked and spec.inputs == (root / "pixi.toml", root / "pixi.lock")
    env = pool_env(tmp_path, over_http)
    manifest = env.install(spec)
    assert installed_version(env.path, "rt-pinned") == "1.0.0"  # the locked one, not the newest
    assert env.run("import six, ipykernel; print(six.__version__)") == "1.16.0"
    assert "six==1.16.0" in manifest.packages
    code = (
        "import six, sys, pathlib; six.__version__, pathlib.Path(sys.prefix, 'share/rt-pinned/version.txt').read_text()"
    )
    result = execute_in_kernel(str(PixiBackend().python_path(env.path)), code)["result"]
    assert result == "('1.16.0', '1.0.0\\n')"  # a kernel runs on the locked packages


def test_a_lock_without_ipykernel_gets_it_added(tmp_path: Path, on_disk: Channels, shared: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    lock(root, on_disk, ["python", "rt-pinned ==1.0.0"])
    spec = workspace(root, on_disk, 'rt-pinned = "*"')
    assert spec.locked and not any(p.startswith("ipykernel") for p in spec.packages)
    env = pool_env(tmp_path, on_disk, shared=shared)
    env.install(spec)  # add_extras imports ipykernel and ipywidgets afterwards
    assert installed_version(env.path, "rt-pinned") == "1.0.0"
    assert env.run("import ipykernel, ipywidgets; print('ok')") == "ok"


def test_a_pyproject_workspace(tmp_path: Path, on_disk: Channels, shared: Path) -> None:
    text = f"""
[project]
name = "demo"
requires-python = ">=3.10"
dependencies = ["six"]

[tool.pixi.workspace]
channels = ["{on_disk.main}", "{on_disk.tiny}"]
platforms = ["linux-64"]

[tool.pixi.dependencies]
rt-pinned = "==1.0.0"
"""
    spec = PixiBackend().read_project(write_manifest(tmp_path / "ws", text, "pyproject.toml"))
    assert spec is not None and spec.python == ">=3.10"
    env = pool_env(tmp_path, on_disk, shared=shared)
    env.install(spec)
    assert installed_version(env.path, "rt-pinned") == "1.0.0"
    assert env.run("import six; print('ok')") == "ok"


# ------------------------------------------------------------------ extras, failures


def test_extra_packages_without_a_project(tmp_path: Path, on_disk: Channels, shared: Path) -> None:
    env = pool_env(tmp_path, on_disk, shared=shared)
    manifest = env.install(packages=["rt-hello"])
    assert (env.path / "share" / "rt-hello" / "hello.txt").is_file() and "rt-hello==1.0.0" in manifest.packages


def test_an_unsolvable_workspace_names_the_package(tmp_path: Path, on_disk: Channels) -> None:
    spec = workspace(tmp_path / "ws", on_disk, 'rt-needs-missing = "*"')
    request = ExtrasRequest(tmp_path / "env", (), BackendConfig(channels=[on_disk.main]), tmp_path / "c", project=spec)
    with pytest.raises(BackendError) as caught:
        PixiBackend().install_extras(request)
    assert caught.value.kind == ErrorKind.INVALID_PACKAGE and caught.value.package == "rt-does-not-exist"


def test_an_unknown_pypi_dependency_is_an_invalid_package(tmp_path: Path, on_disk: Channels, shared: Path) -> None:
    env = pool_env(tmp_path, on_disk, shared=shared)
    spec = workspace(tmp_path / "ws", on_disk, 'rt-hello = "*"', 'rt-no-such-package-on-pypi-4c1f = "*"')
    with pytest.raises(BackendError) as caught:
        env.install(spec)
    assert caught.value.kind == ErrorKind.INVALID_PACKAGE and "rt-no-such-package-on-pypi-4c1f" in str(caught.value)
