"""Hostile and careless clients, and racing daemons: the daemon keeps serving,
memory stays bounded, other users are locked out."""

from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from tests.support.daemon import DaemonProcess, raw_connect, runtimed_cmd, wait_for
from tests.support.plugins import install_toys

QUIET = "[backends.uv]\npool_size = 0\n[daemon]\nidle_timeout_s = 1\n"


def _lines(s: socket.socket, n: int) -> list[dict]:  # type: ignore[type-arg]
    buf = b""
    while buf.count(b"\n") < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return [json.loads(line) for line in buf.splitlines()[:n]]


def _rss(daemon: DaemonProcess) -> int:
    return psutil.Process(daemon.proc.pid).memory_info().rss  # type: ignore[union-attr]


def test_ten_megabyte_line_garbage_and_silence(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=QUIET).start()
    before = _rss(daemon)
    s = raw_connect(daemon.socket)
    chunk = b"A" * (1024 * 1024)
    for _ in range(10):  # 10 MB without a newline
        s.sendall(chunk)
    s.sendall(b'\n{"type":"ping"}\n')
    replies = _lines(s, 2)
    assert replies[0]["code"] == "line_too_long" and replies[1]["type"] == "pong"
    s.sendall(os.urandom(4096).replace(b"\n", b"") + b'\n{"type":"ping"}\n')
    replies = _lines(s, 2)
    assert replies[0]["type"] == "error" and replies[1]["type"] == "pong"
    s.close()
    assert _rss(daemon) - before < 20 * 1024 * 1024  # the monster line was never buffered

    # A client that connects and never speaks gets a timed close.
    silent = raw_connect(daemon.socket)
    started = time.monotonic()
    reply = _lines(silent, 1)
    assert reply[0]["code"] == "idle_timeout" and time.monotonic() - started < 10
    assert silent.recv(1) == b""  # closed
    silent.close()


def test_five_hundred_connections_at_once(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 0\n").start()
    before = _rss(daemon)
    sockets = [raw_connect(daemon.socket) for _ in range(500)]
    for s in sockets:
        s.sendall(b'{"type":"ping"}\n')
    assert all(_lines(s, 1)[0]["type"] == "pong" for s in sockets)
    with daemon.client() as c:  # a well-behaved client is still served meanwhile
        assert c.status().daemon.pid == daemon.proc.pid  # type: ignore[union-attr]
    for s in sockets:
        s.close()
    assert _rss(daemon) - before < 50 * 1024 * 1024


def test_other_users_cannotraw_connect(daemon_factory: type[DaemonProcess]) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to switch to another user for real")
    daemon = daemon_factory(config="[backends.uv]\npool_size = 0\n").start()
    nobody = pwd.getpwnam("nobody")
    pid = os.fork()
    if pid == 0:  # child: become nobody, try to connect
        code = 3
        try:
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            try:
                s.connect(str(daemon.socket))
                code = 1  # connected: the socket is not private
            except PermissionError:
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "another user could connect (or the check failed)"


def test_ten_daemons_at_once_exactly_one_serves(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 0\n")
    procs = [
        subprocess.Popen(runtimed_cmd("run"), env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for _ in range(10)
    ]
    try:
        wait_for(lambda: sum(p.poll() is not None for p in procs) >= 9, timeout=60, what="nine to give up")
        time.sleep(1)
        running = [p for p in procs if p.poll() is None]
        assert len(running) == 1
        exited = [p for p in procs if p.poll() is not None]
        assert all(p.returncode == 0 for p in exited)
        assert all(b"already running" in p.stdout.read() for p in exited)  # type: ignore[union-attr]
        daemon.proc = running[0]  # so the fixture stops it
        wait_for(lambda: (daemon.cache_dir / "daemon.json").exists(), timeout=30)
        with daemon.client() as c:
            assert c.ping().protocol_version == 1
        assert daemon.daemon_json()["pid"] == running[0].pid
    finally:
        for p in procs:
            if p.poll() is None and p is not daemon.proc:
                p.kill()


def test_twenty_processes_taking_concurrently_never_share(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    site = install_toys(tmp_path / "site", toy="slow")
    daemon = daemon_factory(
        config="[backends.uv]\npool_size = 0\n[backends.toy]\npool_size = 8\nconcurrency = 4\n",
        env={"PYTHONPATH": str(site)},
    ).start()
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from runtimed.client import Client\n"
        "out = []\n"
        "with Client(sys.argv[1]) as c:\n"
        "    for _ in range(10):\n"
        "        env = c.take('toy', wait_s=60)\n"
        "        assert env is not None and (Path(env.venv_path) / '.runtimed' / 'manifest.json').exists()\n"
        "        out.append(env.venv_path)\n"
        "print(json.dumps(out))\n"
    )

    def run_client(_: int) -> list[str]:
        result = subprocess.run(
            [sys.executable, "-c", script, str(daemon.socket)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max_workers=20) as pool:
        paths = [p for batch in pool.map(run_client, range(20)) for p in batch]
    assert len(paths) == 200 and len(set(paths)) == 200, "an env was handed out twice"
