"""Where the socket lives, and who may serve it: runtimed never chmods or uses a
directory it does not own, and the client talks only to a server of its own uid.

The hostile-user cases run as root with ``nobody`` as the other user, for real.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtimed.client import Client, DaemonUntrusted
from runtimed.util.paths import Paths, UnsafePathError, check_socket_dir, ensure_private_dir
from tests.support.daemon import DaemonProcess, runtimed_cmd, wait_for

NO_POOLS = "[backends.uv]\npool_size = 0\n"
SYSTEM_PYTHON = "/usr/bin/python3"  # readable by nobody (the test venv may not be)

# A server that answers every line like runtimed would, but hands out its own python.
PLANTED_SERVER = r"""
import json, os, socket, sys
path = sys.argv[1]
os.makedirs(os.path.dirname(path), exist_ok=True)
os.chmod(os.path.dirname(path), 0o777)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
s.listen(8)
print("ready", flush=True)
while True:
    conn, _ = s.accept()
    for line in conn.makefile("rb"):
        kind = json.loads(line).get("type")
        if kind == "ping":
            reply = {"type": "pong", "protocol_version": 1, "daemon_version": "evil"}
        else:
            reply = {"type": "env", "env": {"env_type": "uv", "venv_path": "/tmp/evil",
                     "python_path": "/tmp/evil/bin/python", "id": "x"}}
        conn.sendall(json.dumps(reply).encode() + b"\n")
    conn.close()
"""


def _as_nobody() -> None:
    nobody = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(nobody.pw_gid)
    os.setuid(nobody.pw_uid)


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A private stand-in for /tmp (sticky, world-writable) that ``nobody`` can reach;
    the machine's real /tmp/runtimed-<uid> is never touched."""
    base = Path(tempfile.mkdtemp(prefix="rtd-shared-", dir="/tmp"))
    os.chmod(base, 0o755)
    tmp = base / "tmp"
    tmp.mkdir()
    os.chmod(tmp, 0o1777)
    yield tmp
    shutil.rmtree(base, ignore_errors=True)


def _long_cache_dir(tmp_path: Path) -> Path:
    """A cache dir whose socket path is too long for sun_path: the fallback dir is used."""
    return tmp_path / ("c" * 60) / ("d" * 60)


def _needs_root() -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to act as another user (nobody) for real")


def test_planted_fallback_dir_and_server_are_refused(
    daemon_factory: type[DaemonProcess], tmp_path: Path, shared_tmp: Path
) -> None:
    _needs_root()
    env = {"TMPDIR": str(shared_tmp)}
    daemon = daemon_factory(config=NO_POOLS, env=env)
    daemon.cache_dir = _long_cache_dir(tmp_path)
    daemon.env["RUNTIMED_CACHE_DIR"] = str(daemon.cache_dir)
    old_tmpdir = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(shared_tmp)
    tempfile.tempdir = None
    try:
        sock = Paths.resolve(cache_dir=daemon.cache_dir).socket
    finally:
        if old_tmpdir is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_tmpdir
        tempfile.tempdir = None
    assert sock.parent == shared_tmp / f"runtimed-{os.getuid()}"
    # Another user gets there first: their 0777 dir, their server at our socket path.
    evil = subprocess.Popen(
        [SYSTEM_PYTHON, "-c", PLANTED_SERVER, str(sock)],
        preexec_fn=_as_nobody,  # switch uid before exec
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert evil.stdout is not None and evil.stdout.readline().strip() == "ready"
        assert sock.parent.stat().st_uid == pwd.getpwnam("nobody").pw_uid

        # The client never believes it: not the CLI, not the library.
        ping = daemon.run_cli("ping")
        assert ping.returncode == 1
        assert "evil" not in ping.stdout
        assert "served by uid" in ping.stderr and "not by you" in ping.stderr
        take = daemon.run_cli("take", "uv")
        assert take.returncode == 1 and "/tmp/evil" not in take.stdout
        with pytest.raises(DaemonUntrusted):
            Client(sock).connect()

        # The daemon refuses the dir (one line, exit 1) and leaves it as it found it.
        started = time.monotonic()
        run = subprocess.run(runtimed_cmd("run"), env=daemon.env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 1, run.stderr
        assert time.monotonic() - started < 30
        assert f"refusing to use {sock.parent} belongs to uid" in run.stderr
        assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o777
        assert sock.exists() and sock.stat().st_uid != 0  # their socket is not ours to remove
    finally:
        evil.kill()
        evil.wait(10)


def test_fallback_dir_of_ours_that_others_can_write_is_refused(
    daemon_factory: type[DaemonProcess], tmp_path: Path, shared_tmp: Path
) -> None:
    daemon = daemon_factory(config=NO_POOLS, env={"TMPDIR": str(shared_tmp)})
    daemon.cache_dir = _long_cache_dir(tmp_path)
    daemon.env["RUNTIMED_CACHE_DIR"] = str(daemon.cache_dir)
    fallback = shared_tmp / f"runtimed-{os.geteuid()}"
    fallback.mkdir()
    os.chmod(fallback, 0o777)
    run = subprocess.run(runtimed_cmd("run"), env=daemon.env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "writable by others" in run.stderr and str(fallback) in run.stderr
    assert stat.S_IMODE(fallback.stat().st_mode) == 0o777


def test_long_cache_dir_works_through_a_fresh_fallback_dir(
    daemon_factory: type[DaemonProcess], tmp_path: Path, shared_tmp: Path
) -> None:
    daemon = daemon_factory(config=NO_POOLS, env={"TMPDIR": str(shared_tmp)})
    daemon.cache_dir = _long_cache_dir(tmp_path)
    daemon.env["RUNTIMED_CACHE_DIR"] = str(daemon.cache_dir)
    daemon.start(wait=False)
    fallback = shared_tmp / f"runtimed-{os.geteuid()}"
    wait_for(lambda: (daemon.cache_dir / "daemon.json").exists(), timeout=30, what="daemon.json")
    endpoint = Path(daemon.daemon_json()["endpoint"])
    assert endpoint.parent == fallback
    assert stat.S_IMODE(fallback.stat().st_mode) == 0o700
    ping = daemon.run_cli("ping")
    assert ping.returncode == 0 and "pong" in ping.stdout


def _start_with_socket(daemon_factory: type[DaemonProcess], sock: Path) -> DaemonProcess:
    daemon = daemon_factory(config=NO_POOLS)
    daemon.env["RUNTIMED_SOCKET"] = str(sock)
    return daemon


def test_shared_socket_dir_is_used_as_it_is(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)  # like /tmp
    for directory, mode in ((shared, 0o755), (sticky, 0o1777)):
        sock = directory / "r.sock"
        daemon = _start_with_socket(daemon_factory, sock)
        daemon.start(wait=False)
        wait_for(lambda d=daemon: (d.cache_dir / "daemon.json").exists(), timeout=30, what="daemon.json")
        result = daemon.run_cli("ping")
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(directory.stat().st_mode) == mode  # never chmod'ed
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        daemon.stop()


def test_unsafe_socket_dirs_are_refused_and_left_alone(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)  # world-writable, not sticky: anyone could swap the socket
    cases = [(open_dir, 0o777, "writable by others")]
    if os.getuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir()
        os.chown(theirs, pwd.getpwnam("nobody").pw_uid, -1)
        cases.append((theirs, 0o755, "belongs to uid"))
    for directory, mode, needle in cases:
        os.chmod(directory, mode)
        daemon = _start_with_socket(daemon_factory, directory / "r.sock")
        run = subprocess.run(runtimed_cmd("run"), env=daemon.env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 1
        assert needle in run.stderr and "Traceback" not in run.stderr
        assert stat.S_IMODE(directory.stat().st_mode) == mode
        assert not (directory / "r.sock").exists()


def test_socket_path_longer_than_sun_path_fails_cleanly(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    sock = tmp_path / ("s" * 120) / "r.sock"
    daemon = _start_with_socket(daemon_factory, sock)
    daemon.config_file.write_text("[backends.uv]\npool_size = 1\n")  # workers would start
    started = time.monotonic()
    run = subprocess.run(runtimed_cmd("run"), env=daemon.env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "longer than" in run.stderr and "RUNTIMED_SOCKET" in run.stderr
    assert "Traceback" not in run.stderr
    assert time.monotonic() - started < 30
    assert not (daemon.cache_dir / "daemon.json").exists()


def test_private_dir_rules(tmp_path: Path) -> None:
    fresh = tmp_path / "a" / "b"
    ensure_private_dir(fresh)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    os.chmod(mine, 0o755)
    ensure_private_dir(mine)  # ours and not writable by others: tightened
    assert stat.S_IMODE(mine.stat().st_mode) == 0o700
    os.chmod(mine, 0o775)
    with pytest.raises(UnsafePathError, match="writable by others"):
        ensure_private_dir(mine)
    assert stat.S_IMODE(mine.stat().st_mode) == 0o775
    # A socket dir that is not ours to manage is only checked, never changed.
    os.chmod(mine, 0o755)
    check_socket_dir(mine)
    assert stat.S_IMODE(mine.stat().st_mode) == 0o755


def test_cache_dir_of_another_user_is_never_written(daemon_factory: type[DaemonProcess], shared_tmp: Path) -> None:
    _needs_root()
    daemon = daemon_factory(config=NO_POOLS)
    theirs = shared_tmp / "their-cache"
    subprocess.run(
        [SYSTEM_PYTHON, "-c", f"import os; os.mkdir({str(theirs)!r}); os.chmod({str(theirs)!r}, 0o777)"],
        preexec_fn=_as_nobody,  # switch uid before exec
        check=True,
    )
    daemon.cache_dir = theirs
    daemon.env["RUNTIMED_CACHE_DIR"] = str(theirs)
    run = subprocess.run(runtimed_cmd("run"), env=daemon.env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert f"refusing to use {theirs} belongs to uid" in run.stderr and "Traceback" not in run.stderr
    assert list(theirs.iterdir()) == []  # no log, lock or socket written into it
    assert stat.S_IMODE(theirs.stat().st_mode) == 0o777
