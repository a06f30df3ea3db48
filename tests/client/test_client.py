"""The Python client: daemon-first, never raising when asked not to, in-process fallback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runtimed import DaemonNotRunning, take_env, try_get_pooled_env
from runtimed.client import Client
from runtimed.envs.envdir import read_lease, read_manifest
from tests.support.daemon import DaemonProcess


def test_try_get_pooled_env_is_none_without_daemon(tmp_path: Path) -> None:
    assert try_get_pooled_env("uv", socket_path=tmp_path / "nothing.sock") is None
    assert try_get_pooled_env("uv") is None  # the default paths point at an empty temp dir


def test_client_raises_daemon_not_running(tmp_path: Path) -> None:
    with pytest.raises(DaemonNotRunning):
        Client(tmp_path / "nothing.sock").ping()
    with pytest.raises(DaemonNotRunning):
        take_env("uv", fallback=False, socket_path=tmp_path / "nothing.sock")


def test_take_env_builds_in_process_without_daemon(
    tmp_path: Path, uv_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    env = take_env("uv", cache_dir=tmp_path / "cache", socket_path=tmp_path / "nothing.sock")
    path = Path(env.venv_path)
    assert path.is_relative_to(tmp_path / "cache" / "envs")
    assert read_manifest(path) is not None
    lease = read_lease(path)
    assert lease is not None and lease.keep  # it belongs to the caller
    subprocess.run([env.python_path, "-c", "import ipykernel"], check=True)


def test_try_get_pooled_env_from_a_daemon(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\n").start()
    env = try_get_pooled_env("uv", wait_s=120, socket_path=daemon.socket)
    assert env is not None and Path(env.python_path).exists()
    assert try_get_pooled_env("no-such-backend", socket_path=daemon.socket) is None
