"""The daemon end to end with real uv envs: filling, taking, refilling, restarting."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from runtimed.core.records import ReadyEnv
from runtimed.envs.envdir import read_lease, read_manifest, scan_envs
from runtimed.protocol.messages import PooledEnv
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.kernel import execute_in_kernel

UV2 = "[backends.uv]\npool_size = 2\n"


def test_pool_fills_hands_out_distinct_envs_and_refills(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=UV2).start()
    status = daemon.wait_pool("uv", 2)
    assert status.pools["uv"].target == 2
    assert status.pools["uv"].worker is not None and status.pools["uv"].worker.pid

    with daemon.client() as c:
        first, second = c.take("uv"), c.take("uv")
    assert first is not None and second is not None
    assert first.venv_path != second.venv_path and first.id != second.id
    for env in (first, second):
        assert Path(env.python_path).is_relative_to(env.venv_path)
        subprocess.run([env.python_path, "-c", "import ipykernel, ipywidgets"], check=True)
        assert any(p.startswith("ipykernel==") for p in env.packages)
        lease = read_lease(Path(env.venv_path))
        assert lease is not None and lease.pid  # SO_PEERCRED gave the holder

    # A take starts a rebuild at once; the pool refills to its target.
    assert daemon.status().pools["uv"].warming >= 1
    daemon.wait_pool("uv", 2)
    with daemon.client() as c:
        third = c.take("uv")
    assert third is not None and third.venv_path not in (first.venv_path, second.venv_path)


def test_taken_env_runs_a_real_kernel(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\n").start()
    daemon.wait_pool("uv", 1)
    result = daemon.run_cli("take", "uv", "--json")
    assert result.returncode == 0, result.stderr
    import json

    env = json.loads(result.stdout)
    assert execute_in_kernel(env["python_path"], "1+1")["result"] == "2"
    # Bytecode was compiled explicitly, even with PYTHONDONTWRITEBYTECODE set here.
    site = Path(env["venv_path"]) / "lib"
    assert any(site.rglob("ipykernel/__pycache__/kernelapp.cpython-*.pyc"))


def test_restart_reuses_complete_envs_without_rebuilding(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=UV2).start()
    before = {e.id: e.created_at for e in daemon.wait_pool("uv", 2) and _pooled(daemon)}
    assert len(before) == 2
    daemon.stop()
    # A partial env (no manifest) left behind by a crash is deleted at startup.
    partial = daemon.cache_dir / "envs" / "runtimed-uv-deadbeef"
    (partial / "bin").mkdir(parents=True)

    daemon.start()
    status = daemon.wait_pool("uv", 2, timeout=10)
    assert status.pools["uv"].warming == 0
    assert {e.id: e.created_at for e in _pooled(daemon)} == before
    with daemon.client() as c:
        env = c.take("uv")
    assert env is not None and env.id in before
    assert not partial.exists()


def test_stale_envs_are_deleted_when_the_spec_changes(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\n").start()
    daemon.wait_pool("uv", 1)
    old = {e.id for e in _pooled(daemon)}
    daemon.stop()
    daemon.write_config('[backends.uv]\npool_size = 1\npackages = ["six"]\n')
    daemon.start()
    daemon.wait_pool("uv", 1)
    new = _pooled(daemon)
    assert old.isdisjoint({e.id for e in new})
    assert any(p.startswith("six==") for p in new[0].packages)


def test_empty_pool_answers_empty(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 0\n").start()
    with daemon.client() as c:
        assert c.take("uv") is None
    result = daemon.run_cli("take", "uv")
    assert result.returncode == 1 and "pool empty" in result.stderr


def test_take_wait_gets_a_warming_env(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\n").start()
    with daemon.client() as c:
        env = c.take("uv", wait_s=120)  # right after start: nothing is ready yet
    assert env is not None and read_manifest(Path(env.venv_path)) is not None


def test_release_deletes_and_unknown_paths_are_refused(daemon_factory: type[DaemonProcess]) -> None:
    from runtimed.client import DaemonError

    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\n").start()
    daemon.wait_pool("uv", 1)
    with daemon.client() as c:
        env = c.take("uv")
        assert env is not None
        try:
            c.release("/etc")
        except DaemonError as exc:
            assert exc.code == "unknown_env"
        else:
            raise AssertionError("release of a foreign path was accepted")
        c.release(env.venv_path)
    assert not Path(env.venv_path).exists()


def _pooled(daemon: DaemonProcess) -> list:  # type: ignore[type-arg]
    """The complete, unleased envs on disk."""
    envs = []
    for e in scan_envs(daemon.cache_dir / "envs"):
        manifest = read_manifest(e.path)
        if manifest is not None and read_lease(e.path) is None:
            envs.append(PooledEnv.from_ready(ReadyEnv(e.path, manifest)))
    return envs


def test_broken_envs_found_at_startup_are_not_handed_out(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=UV2).start()
    daemon.wait_pool("uv", 2)
    envs = _pooled(daemon)
    daemon.stop()
    # One env lost its ipykernel, the other its python (as when a base interpreter is removed).
    no_kernel, no_python = (Path(e.venv_path) for e in envs)
    for pkg in no_kernel.glob("lib/python*/site-packages/ipykernel"):
        shutil.rmtree(pkg)
    (no_python / "bin" / "python").unlink()
    (no_python / "bin" / "python").symlink_to("/nonexistent/python3")

    daemon.start()
    wait_for(lambda: not no_kernel.exists() and not no_python.exists(), timeout=60, what="broken envs deleted")
    daemon.wait_pool("uv", 2)
    with daemon.client() as c:
        for _ in range(2):
            env = c.take("uv")
            assert env is not None
            subprocess.run([env.python_path, "-c", "import ipykernel"], check=True)
