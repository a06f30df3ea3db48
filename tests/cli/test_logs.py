"""``runtimed logs``: the daemon's real log, rotation by the daemon's own handler, ``-f``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from tests.support.daemon import DaemonProcess, runtimed_cmd, wait_for

# Logs through runtimed.daemon.entry.setup_logging (the daemon's handler), 64 KiB per file,
# 2 backups; each stdin line "N" logs N more numbered lines and answers "ok".
WRITER = """
import sys
from runtimed.daemon.entry import setup_logging
from runtimed.util.paths import Paths
import logging
setup_logging(Paths.resolve(), to_stderr=False, max_bytes=65536, backups=2)
log = logging.getLogger("runtimed.test")
count = 0
for command in sys.stdin:
    for _ in range(int(command)):
        count += 1
        log.info("line %06d %s", count, "z" * 60)
    print("ok", flush=True)
"""


def test_logs_shows_the_daemons_last_lines(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory().start()
    result = daemon.run_cli("logs", "-n", "20")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert 0 < len(lines) <= 20
    assert any(f"listening on {daemon.socket}" in line for line in lines)
    daemon.stop()
    after = daemon.run_cli("logs", "-n", "1")  # no daemon needed
    assert after.returncode == 0 and after.stdout.rstrip().endswith("stopped")


def test_no_log_yet(tmp_path: Path) -> None:
    env = {**os.environ, "RUNTIMED_CACHE_DIR": str(tmp_path / "nothing")}
    result = subprocess.run(runtimed_cmd("logs"), env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "no log at" in result.stderr


def test_bad_rotation_settings_are_rejected(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[daemon]\nlog_max_bytes = 100\n")
    result = subprocess.run(runtimed_cmd("run"), env=daemon.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "log_max_bytes must be at least 65536" in result.stderr


def test_follow_across_real_rotation(tmp_path: Path) -> None:
    env = {**os.environ, "RUNTIMED_CACHE_DIR": str(tmp_path / "cache")}
    log = tmp_path / "cache" / "runtimed.log"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    follower = None
    try:
        assert writer.stdin and writer.stdout

        def emit(n: int) -> None:
            writer.stdin.write(f"{n}\n")  # type: ignore[union-attr]
            writer.stdin.flush()  # type: ignore[union-attr]
            assert writer.stdout.readline().strip() == "ok"  # type: ignore[union-attr]

        emit(10)  # lines 1-10 exist before -f starts
        follower = subprocess.Popen(
            runtimed_cmd("logs", "-f", "-n", "3"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.extend(iter(follower.stdout.readline, b"")), daemon=True)  # type: ignore[union-attr]
        reader.start()

        def numbers() -> list[int]:
            return [int(line.split()[5]) for line in list(got)]

        wait_for(lambda: numbers()[-1:] == [10], timeout=60, what="the last 3 lines")
        total = 10
        for _ in range(8):  # ~1,100 lines of ~110 bytes: 64 KiB files rotate about twice
            emit(140)
            total += 140
            wait_for(lambda total=total: numbers()[-1:] == [total], timeout=60, what=f"line {total}")
        assert (log.parent / "runtimed.log.2").exists()  # it rotated twice
        assert numbers() == list(range(8, total + 1))  # every line once, in order, across rotations
        assert follower.poll() is None  # still following
    finally:
        if follower is not None:
            follower.terminate()
            follower.wait(10)
        writer.stdin.close()  # type: ignore[union-attr]
        writer.wait(10)
