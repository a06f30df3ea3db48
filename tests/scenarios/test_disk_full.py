"""A full disk is named as the cause of a build failure, whatever error the tool reported
(uv may say ``No such file or directory`` for a file whose write failed with ENOSPC)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtimed.backend import Availability, BackendError, BuildRequest, ErrorKind
from runtimed.config import BackendConfig
from runtimed.envs.build import build_env
from tests.support.autostart import autostart_home
from tests.support.daemon import DaemonProcess, wait_for


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A private 3 MiB tmpfs (skipped where mounting is not permitted)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(mnt)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


class FillsTheDisk:
    """A backend whose create() fills the disk, then fails as uv sometimes does: ENOENT."""

    name = "filler"

    def availability(self) -> Availability:
        return Availability(ok=True)

    def create(self, request: BuildRequest) -> None:
        request.path.mkdir()
        with (request.path / "big").open("wb") as f, pytest.raises(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        raise BackendError(ErrorKind.SETUP_FAILED, "failed to open file METADATA: No such file or directory")


def test_a_build_failing_on_a_full_disk_says_disk_full(small_fs: Path) -> None:
    request = BuildRequest(env_id="x", path=small_fs / "envs" / "env-x", config=BackendConfig(), cache_dir=small_fs)
    (small_fs / "envs").mkdir()
    with pytest.raises(BackendError) as caught:
        build_env(FillsTheDisk(), request)  # type: ignore[arg-type]
    error = caught.value
    assert error.kind is ErrorKind.SETUP_FAILED
    assert error.message.startswith(f"disk full: 0 KiB free on the file system of {small_fs / 'envs'}; "), error
    assert error.message.endswith("No such file or directory")


def test_a_build_failing_with_room_to_spare_is_reported_as_it_was(tmp_path: Path) -> None:
    request = BuildRequest(env_id="x", path=tmp_path / "env-x", config=BackendConfig(), cache_dir=tmp_path)

    class Fails(FillsTheDisk):
        def create(self, request: BuildRequest) -> None:
            raise BackendError(ErrorKind.SETUP_FAILED, "no such file")

    with pytest.raises(BackendError) as caught:
        build_env(Fails(), request)  # type: ignore[arg-type]
    assert caught.value.message == "no such file"


@pytest.mark.slow
def test_a_uv_pool_on_a_full_disk_says_disk_full_in_status(
    daemon_factory: type[DaemonProcess], tmp_path: Path, small_fs: Path
) -> None:
    base = tmp_path / "d"
    base.mkdir()
    (base / "cache").symlink_to(small_fs)  # the cache dir is the tiny file system
    daemon = daemon_factory(base=base, config="[backends.uv]\npool_size = 1\n").start()

    def error() -> str | None:
        pool = daemon.status().pools["uv"]
        return pool.error.message if pool.error else None

    message = wait_for(error, timeout=120, what="the uv build to fail")
    assert message is not None and message.startswith("disk full: "), message


@pytest.mark.slow
def test_an_auto_start_on_a_full_disk_says_disk_full(
    tmp_path: Path, uv_cache: Path, small_fs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (small_fs / "filler").open("wb") as f, pytest.raises(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    base = tmp_path / "home"
    base.mkdir()
    (base / "cache").symlink_to(small_fs)
    with autostart_home(base, uv_cache, monkeypatch) as home:
        result = home.run_cli("take")
        assert result.returncode == 1 and "exited without starting (disk full: 0 KiB free" in result.stderr, result
