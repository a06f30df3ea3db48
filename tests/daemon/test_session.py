"""Leases without an fsync, exactly-once kept (``runtimed.daemon.session``): after an OS crash
(another boot id, a lease lost with the page cache) no handed-out env is pooled again;
after a daemon crash under the same boot, the untouched envs are pooled again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from runtimed.core.records import Lease
from runtimed.daemon.session import BOOT_ID_FILE_ENV, Session, read_session
from runtimed.envs.envdir import META_DIR, PREPARED_LEASE, prepare_lease, read_lease, write_lease
from tests.support.daemon import DaemonProcess


def _session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, boot: str) -> Session:
    boot_file = tmp_path / "boot_id"
    boot_file.write_text(boot + "\n")
    monkeypatch.setenv(BOOT_ID_FILE_ENV, str(boot_file))
    (tmp_path / "envs").mkdir(exist_ok=True)
    return Session(tmp_path / "session.jsonl", tmp_path / "envs")


def test_only_an_unclean_end_under_another_boot_makes_suspects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    session = _session(tmp_path, monkeypatch, "boot-a")
    session.begin(["runtimed-uv-1"])
    session.pooled(tmp_path / "envs" / "runtimed-uv-2")
    assert session.suspects() == frozenset()  # same boot: a daemon crash; the page cache kept the leases
    _session(tmp_path, monkeypatch, "boot-b")
    assert session.suspects() == {"runtimed-uv-1", "runtimed-uv-2"}
    monkeypatch.setenv(BOOT_ID_FILE_ENV, str(tmp_path / "unreadable"))
    assert session.suspects() == {"runtimed-uv-1", "runtimed-uv-2"}  # cannot tell: an OS crash
    session.end_clean()
    assert session.suspects() == frozenset()


def test_a_torn_last_append_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    session = _session(tmp_path, monkeypatch, "boot-a")
    session.begin([])
    session.pooled(tmp_path / "envs" / "runtimed-uv-1")
    with open(session.path, "a") as f:
        f.write('{"pooled": "runtimed-uv-')
    previous = read_session(session.path)
    assert previous is not None and previous.envs == {"runtimed-uv-1"} and not previous.clean


def test_plain_leases_are_not_synced_kept_ones_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    session = _session(tmp_path, monkeypatch, "boot-a")
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    env = tmp_path / "envs" / "runtimed-uv-1"
    (env / META_DIR).mkdir(parents=True)
    session.write_lease(env, Lease(pid=1, create_time=None, taken_at=""))
    assert synced == [] and json.loads((env / META_DIR / "lease.json").read_text())["pid"] == 1
    session.write_lease(env, Lease(pid=1, create_time=None, taken_at="", keep=True))
    assert len(synced) == 2  # the file, then its directory (the rename)


def test_a_lease_is_written_into_the_prepared_file_unless_it_is_not_empty(tmp_path: Path) -> None:
    lease = Lease(pid=7, create_time=None, taken_at="")
    env = tmp_path / "env"
    env.mkdir()
    prepare_lease(env)
    write_lease(env, lease, sync=False)
    assert read_lease(env) == lease and not (env / META_DIR / PREPARED_LEASE).exists()
    other = tmp_path / "other"
    other.mkdir()
    prepare_lease(other)
    (other / META_DIR / PREPARED_LEASE).write_text("junk")
    write_lease(other, lease, sync=False)
    assert read_lease(other) == lease and (other / META_DIR / PREPARED_LEASE).read_text() == "junk"


def _daemon(factory: type[DaemonProcess], base: Path) -> DaemonProcess:
    base.mkdir()
    (base / "boot_id").write_text("boot-a\n")
    return factory(base, config="[backends.uv]\npool_size = 2\n", env={BOOT_ID_FILE_ENV: str(base / "boot_id")})


def _pooled(daemon: DaemonProcess) -> set[str]:
    with daemon.client() as c:
        return {e.path for e in c.envs() if e.state == "pooled"}


def _take_all(daemon: DaemonProcess) -> set[str]:
    daemon.wait_pool("uv", 2)
    with daemon.client() as c:
        envs = [c.take("uv", lease_pid=os.getpid()) for _ in range(2)]
    return {e.venv_path for e in envs if e is not None}


@pytest.mark.slow
def test_an_os_crash_never_pools_a_handed_out_env_again(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    daemon = _daemon(daemon_factory, tmp_path / "d").start()
    daemon.wait_pool("uv", 2)
    with daemon.client() as c:
        env = c.take("uv", lease_pid=os.getpid())
    assert env is not None
    handed = Path(env.venv_path)
    untouched = _pooled(daemon)
    daemon.kill()
    # What an OS crash can lose: the lease, written since the last sync; and it reboots.
    (handed / META_DIR / "lease.json").unlink()
    (tmp_path / "d" / "boot_id").write_text("boot-b\n")
    daemon.start()
    assert handed not in {Path(p) for p in _take_all(daemon)}
    assert not handed.exists()  # deleted as a suspect, never pooled
    assert not any(Path(p).exists() for p in untouched)  # the session named them too: rebuilt


@pytest.mark.slow
def test_a_daemon_crash_under_the_same_boot_pools_the_untouched_envs_again(
    daemon_factory: type[DaemonProcess], tmp_path: Path
) -> None:
    daemon = _daemon(daemon_factory, tmp_path / "d").start()
    daemon.wait_pool("uv", 2)
    with daemon.client() as c:
        env = c.take("uv", lease_pid=os.getpid())
    assert env is not None
    untouched = _pooled(daemon)
    assert untouched and env.venv_path not in untouched
    daemon.kill()  # the page cache keeps the unsynced lease
    daemon.start()
    taken = _take_all(daemon)
    assert env.venv_path not in taken and untouched <= taken
    assert (Path(env.venv_path) / META_DIR / "lease.json").exists()
    # A clean stop syncs and marks the session clean: another boot then trusts the disk too.
    daemon.wait_pool("uv", 2)
    refilled = _pooled(daemon)
    daemon.stop()
    (tmp_path / "d" / "boot_id").write_text("boot-b\n")
    daemon.start()
    assert refilled <= _take_all(daemon)
    assert all(Path(p).exists() for p in taken | {env.venv_path})
