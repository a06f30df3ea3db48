"""Modes as a user sees them (issue 17, item 1): the daemon never changes its umask,
its workers keep the user's, the socket is 0600, and directories an earlier daemon
left unenterable (``drw-------``) are repaired, only the user's own, never through a
symlink. Run without root's permission bypass (``.ci/run`` uses setpriv), where a
``drw-------`` directory cannot be entered, as for any user."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runtimed.util.modes import repair_once, repair_tree, repaired_mode
from tests.support.daemon import DaemonProcess, wait_for

ONE_UV = "[backends.uv]\npool_size = 1\n"


def _umask(pid: int | str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise AssertionError(f"no Umask in /proc/{pid}/status")


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _damaged(path: Path, mode: int = 0o600) -> Path:
    """A directory as an earlier daemon (umask 0177) left it."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    return path


def unenterable(root: Path) -> list[str]:
    """Directories under ``root`` (itself included) that their owner cannot search."""
    found = [] if _mode(root) & stat.S_IXUSR else [str(root)]
    for path, dirs, _files in os.walk(root):
        found += [os.path.join(path, d) for d in dirs if not _mode(Path(path, d)) & stat.S_IXUSR]
    return found


@pytest.mark.parametrize(
    ("mode", "repaired"),
    [(0o600, 0o700), (0o400, 0o500), (0o644, 0o755), (0o640, 0o750), (0o700, None), (0o755, None), (0o000, None)],
)
def test_repaired_mode(mode: int, repaired: int | None) -> None:
    assert repaired_mode(stat.S_IFDIR | mode) == repaired


def test_repair_tree_fixes_only_the_users_damaged_dirs(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    outside = _damaged(tmp_path / "outside")  # reached only through a symlink
    deep = root / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "file").write_text("x")
    os.chmod(deep / "file", 0o600)
    (root / "a" / "link").symlink_to(outside)
    locked = _damaged(root / "locked", 0o000)  # not the damage pattern: left as it is
    theirs = _damaged(root / "theirs")
    if os.geteuid() == 0:
        os.chown(theirs, 65534, 65534)
    for path, mode in ((deep, 0o600), (root / "a" / "b", 0o600), (root / "a", 0o644), (root, 0o600)):
        os.chmod(path, mode)  # innermost first, while it can still be reached

    try:
        result = repair_tree(root)

        assert _mode(root) == _mode(root / "a" / "b") == _mode(deep) == 0o700
        assert _mode(root / "a") == 0o755
        assert _mode(deep / "file") == 0o600 and _mode(outside) == 0o600 and _mode(locked) == 0
        assert result.repaired == 4
        if os.geteuid() == 0:
            assert _mode(theirs) == 0o600 and result.not_ours == 1
        assert (deep / "file").read_text() == "x"
    finally:  # so pytest can delete the tree later (root without DAC_READ_SEARCH cannot list them)
        if os.geteuid() == 0:
            os.chown(theirs, 0, 0)
        for path in (root, locked, theirs):
            os.chmod(path, 0o700)


def test_repair_once_walks_a_tree_once(tmp_path: Path) -> None:
    root, stamps = tmp_path / "uv-cache", tmp_path / "stamps"
    _damaged(root / "archive-v0" / "x")
    first = repair_once(root, stamps)
    assert first is not None and first.repaired == 1 and first.errors == 0
    _damaged(root / "later")
    assert repair_once(root, stamps) is None
    assert _mode(root / "later") == 0o600  # not walked again


def test_uv_backend_repairs_its_uv_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runtimed_uv.backend import UvBackend

    uv_cache = tmp_path / "uv-cache"
    damaged = _damaged(uv_cache / "archive-v0" / "abc" / "pkg")
    os.chmod(damaged.parent, 0o600)
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    UvBackend().prepare(tmp_path / "backend-cache")
    assert _mode(damaged) == _mode(damaged.parent) == 0o700


def _worker_umask(daemon: DaemonProcess, backend: str) -> str | None:
    worker = daemon.status().pools[backend].worker
    try:
        return f"{_umask(worker.pid):04o}" if worker is not None and worker.pid is not None else None
    except FileNotFoundError:  # it died meanwhile: ask again
        return None


@pytest.mark.slow
def test_workers_keep_the_umask_and_the_socket_is_0600(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=ONE_UV).start()
    launched = _umask("self")  # the daemon inherited the test's umask
    assert _umask(daemon.proc.pid) == launched  # type: ignore[union-attr]
    assert wait_for(lambda: _worker_umask(daemon, "uv"), what="a uv worker") == f"{launched:04o}"
    assert _mode(daemon.socket) == 0o600
    daemon.wait_pool("uv", 1)
    assert unenterable(daemon.cache_dir) == []


@pytest.mark.slow
def test_daemon_repairs_what_an_earlier_daemon_left(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=ONE_UV)
    backends = _damaged(daemon.cache_dir / "backends")
    os.chmod(daemon.cache_dir, 0o700)
    daemon.start()
    assert _mode(backends) == 0o700  # before the workers start
    daemon.wait_pool("uv", 1)
    wait_for(lambda: "gave 1 of" in (daemon.cache_dir / "runtimed.log").read_text(), what="the repair logged")
