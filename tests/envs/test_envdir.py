"""Deleting envs never follows a symlink out of the cache, survives a trash on another
file system, and fails with a typed error (env left in place) on a read-only one."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtimed.envs.envdir import (
    EnvRemovalError,
    Lease,
    empty_trash,
    fallback_trash,
    move_to_trash,
    read_manifest,
    scan_envs,
    write_lease,
)
from tests.support.daemon import DaemonProcess, wait_for


def _env(envs: Path, name: str = "runtimed-uv-abc123") -> Path:
    env = envs / name
    (env / ".runtimed").mkdir(parents=True)
    (env / "bin").mkdir()
    (env / "bin" / "python").write_text("#!")
    return env


def _precious(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    return outside


@contextlib.contextmanager
def _mount(*args: str) -> Iterator[None]:
    target = args[-1]
    if subprocess.run(["mount", *args], check=False, capture_output=True).returncode != 0:
        pytest.skip(f"cannot mount here ({' '.join(args)})")
    try:
        yield
    finally:
        subprocess.run(["umount", target], check=False)


def test_symlinked_trash_is_never_followed(tmp_path: Path) -> None:
    outside = _precious(tmp_path)
    trash = tmp_path / "trash"
    trash.symlink_to(outside)
    empty_trash(trash)
    assert (outside / "precious.txt").read_text() == "keep me"
    assert not os.path.lexists(trash)  # the link itself went

    trash.symlink_to(outside)
    env = _env(tmp_path / "envs")
    target = move_to_trash(env, trash)
    assert target is not None and target.parent == trash and not trash.is_symlink()
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]


def test_symlinked_env_is_unlinked_not_followed(tmp_path: Path) -> None:
    outside = _precious(tmp_path)
    envs = tmp_path / "envs"
    envs.mkdir()
    link = envs / "runtimed-uv-deadbeef"
    link.symlink_to(outside)
    assert read_manifest(link) is None
    with pytest.raises(OSError, match="symlink"):
        write_lease(link, Lease(pid=1, create_time=None, taken_at=""))
    assert scan_envs(envs) == []  # never reported ...
    assert not os.path.lexists(link)  # ... and the link is gone
    link.symlink_to(outside)
    assert move_to_trash(link, tmp_path / "trash") is None
    assert not os.path.lexists(link)
    assert (outside / "precious.txt").read_text() == "keep me"


def test_trash_on_another_file_system_falls_back_beside_envs(tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    env = _env(envs)
    trash = tmp_path / "trash"
    trash.mkdir()
    with _mount("-t", "tmpfs", "tmpfs", str(trash)):
        target = move_to_trash(env, trash)
        assert target is not None and target.parent == fallback_trash(envs)
        assert not env.exists() and (target / "bin" / "python").exists()
        assert scan_envs(envs) == []  # the fallback trash is not an env
        empty_trash(trash, fallback_trash(envs))
        assert list(fallback_trash(envs).iterdir()) == []


def test_read_only_envs_raise_a_typed_error_and_keep_the_env(tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    env = _env(envs)
    with _mount("--bind", str(envs), str(envs)):
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(envs)], check=False).returncode != 0:
            pytest.skip("cannot remount read-only here")
        with pytest.raises(EnvRemovalError) as info:
            move_to_trash(env, tmp_path / "trash")
        assert info.value.errno == errno.EROFS
        assert str(env) in str(info.value)
        assert (env / "bin" / "python").exists()
    assert move_to_trash(env, tmp_path / "trash") is not None  # writable again: works


def test_daemon_never_deletes_through_a_symlinked_trash(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    outside = _precious(tmp_path)
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\n")
    daemon.cache_dir.mkdir(parents=True)
    (daemon.cache_dir / "trash").symlink_to(outside)
    daemon.start()
    status = daemon.wait_pool("uv", 1)
    assert status.pools["uv"].available == 1
    with daemon.client() as c:
        assert c.flush("uv") == 1  # deletes through trash/, which is now a real dir
    assert (outside / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]
    assert not (daemon.cache_dir / "trash").is_symlink()


def test_pooled_env_replaced_by_a_symlink_is_never_handed_out(
    daemon_factory: type[DaemonProcess], tmp_path: Path
) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\n").start()
    daemon.wait_pool("uv", 1)
    (pooled,) = [e for e in daemon.cache_dir.joinpath("envs").iterdir() if e.name.startswith("runtimed-uv-")]
    # Swap the pooled env for a symlink to a copy outside the cache.
    outside = tmp_path / "outside-env"
    pooled.rename(outside)
    pooled.symlink_to(outside)
    with daemon.client() as c:
        env = c.take("uv", wait_s=0)
    assert env is None or env.venv_path != str(pooled)
    assert not (outside / ".runtimed" / "lease.json").exists()  # nothing written through it
    # A restart removes the link itself (never its target) and never pools it.
    daemon.stop()
    daemon.start()
    wait_for(lambda: not os.path.lexists(pooled), timeout=30, what="the symlink to be removed")
    assert (outside / ".runtimed" / "manifest.json").exists()
    with daemon.client() as c:
        assert str(pooled) not in [e.path for e in c.envs()]


def test_start_empties_both_trash_dirs(daemon_factory: type[DaemonProcess]) -> None:
    """Envs left in ``trash/`` and in the fallback ``envs/.trash`` (trash on another
    file system) by a daemon that died mid-delete are removed at the next start."""
    daemon = daemon_factory(config="[backends.uv]\npool_size = 0\n")
    envs = daemon.cache_dir / "envs"
    left = [_env(daemon.cache_dir / "trash"), _env(fallback_trash(envs))]
    assert all((env / "bin" / "python").exists() for env in left)
    daemon.start()
    wait_for(lambda: not any(os.path.lexists(env) for env in left), timeout=30, what="both trash dirs emptied")
    assert fallback_trash(envs).is_dir()  # emptied, not removed: it is ours
    with daemon.client() as c:
        assert c.envs() == []  # nothing from the trash was adopted
