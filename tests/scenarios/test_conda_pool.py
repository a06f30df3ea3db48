"""The daemon with the conda backend end to end: real workers, real rattler, the local channel.

Each daemon has its own cache, so its first conda env is built with a cold package
cache (~1 s of install from the local channel) and ~5-8 s of bytecode compilation.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

from runtimed.envs.envdir import read_lease, read_manifest
from runtimed.protocol.messages import PoolError, StatusReply
from tests.support.conda_channel import ChannelServer, build_channel
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.kernel import execute_in_kernel


@pytest.fixture(scope="module")
def channel() -> Path:
    return build_channel()


def conda_config(channel: str, *, pool_size: int, uv_pool_size: int, extra: str = "") -> str:
    return (
        f"[backends.conda]\npool_size = {pool_size}\nchannels = [{json.dumps(channel)}]\n{extra}"
        f"[backends.uv]\npool_size = {uv_pool_size}\n"
    )


def conda_error(daemon: DaemonProcess, kind: str, failures: int = 1) -> PoolError | None:
    error = daemon.status().pools["conda"].error
    return error if error is not None and error.kind == kind and error.failures >= failures else None


def test_directory_channel_fills_the_pool_and_a_taken_env_runs_a_kernel(
    daemon_factory: type[DaemonProcess], channel: Path
) -> None:
    daemon = daemon_factory(config=conda_config(str(channel), pool_size=2, uv_pool_size=1)).start()
    status: StatusReply = daemon.wait_pool("conda", 2, timeout=180)
    pool = status.pools["conda"]
    assert (pool.target, pool.error) == (2, None)
    assert pool.worker is not None and pool.worker.state == "running"
    daemon.wait_pool("uv", 1)

    with daemon.client() as c:
        env = c.take("conda")
    assert env is not None and env.env_type == "conda"
    prefix = Path(env.venv_path)
    assert Path(env.python_path) == prefix / "bin" / "python"
    assert f"python=={platform.python_version()}" in env.packages
    assert any(p.startswith("ipykernel==") for p in env.packages)
    assert read_lease(prefix) is not None
    manifest = read_manifest(prefix)
    assert manifest is not None
    assert {r["name"] for r in manifest.details["records"]} >= {"python", "ipykernel", "ipywidgets"}
    assert all(r["channel"].rstrip("/") == channel.as_uri() for r in manifest.details["records"])

    assert execute_in_kernel(env.python_path, "1+1")["result"] == "2"
    code = "import sys, ipykernel; sys.prefix + ' ' + ipykernel.__file__"
    prefix_out, module = execute_in_kernel(env.python_path, code)["result"].strip("'").split()
    assert Path(prefix_out) == prefix and Path(module).is_relative_to(prefix)


def test_http_channel_fills_the_pool(daemon_factory: type[DaemonProcess], channel: Path) -> None:
    with ChannelServer(channel) as server:
        daemon = daemon_factory(config=conda_config(server.url, pool_size=1, uv_pool_size=0)).start()
        daemon.wait_pool("conda", 1, timeout=120)
        with daemon.client() as c:
            env = c.take("conda")
        daemon.stop()  # before the channel goes: the refill would fail against a dead server
    assert env is not None
    manifest = read_manifest(Path(env.venv_path))
    assert manifest is not None
    assert manifest.details["repodata"] == "online"
    assert all(r["url"].startswith(server.url + "/") for r in manifest.details["records"])


def test_unreachable_channel_is_a_network_error_while_uv_still_serves(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=conda_config("http://127.0.0.1:9", pool_size=1, uv_pool_size=1)).start()
    # Failures back off and are retried: wait for the second one.
    error = wait_for(lambda: conda_error(daemon, "network", failures=2), timeout=60, what="a retried network error")
    assert "http://127.0.0.1:9/" in error.message
    assert error.package is None
    status = daemon.status()
    assert status.pools["conda"].available == 0
    assert status.pools["conda"].worker is not None and status.pools["conda"].worker.state == "running"

    daemon.wait_pool("uv", 1)
    with daemon.client() as c:
        env = c.take("uv")
        assert c.take("conda") is None
    assert env is not None and Path(env.python_path).exists()
    # The error is still there and still being retried, with a backoff.
    wait_for(
        lambda: (e := daemon.status().pools["conda"].error) and e.kind == "network" and e.retry_in_s is not None,
        timeout=30,
        what="the network error backing off",
    )


def test_unsolvable_packages_name_the_missing_dependency(daemon_factory: type[DaemonProcess], channel: Path) -> None:
    config = conda_config(str(channel), pool_size=1, uv_pool_size=0, extra='packages = ["rt-needs-missing"]\n')
    daemon = daemon_factory(config=config).start()
    error = wait_for(lambda: conda_error(daemon, "invalid_package"), timeout=60, what="an invalid_package error")
    assert error.package == "rt-does-not-exist"
    assert "rt-needs-missing" in error.message
    assert daemon.status().pools["conda"].available == 0
    # Nothing partial is left behind on disk (beyond a retry that may be running).
    wait_for(
        lambda: (
            len(list((daemon.cache_dir / "envs").glob("runtimed-conda-*"))) <= daemon.status().pools["conda"].warming
        ),
        timeout=30,
        what="no partial conda env left behind",
    )
