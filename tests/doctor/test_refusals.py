"""What ``runtimed run`` refuses, ``doctor`` fails (with a fix); a pid is never taken for the
daemon without the lock; a cache dir that is a file is a failed check, not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from runtimed.doctor.daemon_checks import (
    check_cache_dir_permissions,
    check_daemon_files,
    check_socket,
    check_stale_processes,
)
from runtimed.doctor.results import CheckResult, CheckStatus, DoctorContext
from runtimed.util.paths import Paths
from tests.support.daemon import runtimed_cmd

NOBODY = 65534

pytestmark = pytest.mark.slow  # runs `runtimed run` and `runtimed doctor` against each refusal


def _ctx(tmp_path: Path, socket: Path | None = None) -> DoctorContext:
    paths = Paths.resolve(cache_dir=tmp_path / "cache", socket=socket, config_file=tmp_path / "config.toml")
    return DoctorContext(paths, None)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RUNTIMED_CONFIG": str(tmp_path / "config.toml"),
        "JUPYTER_DATA_DIR": str(tmp_path / "jupyter"),
        "JUPYTER_PATH": "",
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
    }
    return subprocess.run(runtimed_cmd(*args), env=env, capture_output=True, text=True, timeout=120)


def _only(results: list[CheckResult], check: str) -> CheckResult:
    (found,) = [r for r in results if r.check == check]
    return found


def test_a_socket_dir_of_another_user_fails_as_run_refuses_it(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, NOBODY, NOBODY)
    ctx = _ctx(tmp_path, socket=theirs / "runtimed.sock")
    result = _only(check_socket(ctx), "socket-dir")
    assert result.status is CheckStatus.FAIL and f"{theirs} belongs to uid {NOBODY}" in result.summary
    assert result.fix is not None and "--socket" in result.fix
    where = ("--cache-dir", str(ctx.paths.cache_dir), "--socket", str(ctx.paths.socket))
    run = _cli(tmp_path, "run", *where)
    assert run.returncode == 1 and f"{theirs} belongs to uid {NOBODY}" in run.stderr
    doctor = _cli(tmp_path, "doctor", *where)
    assert (
        doctor.returncode == 1
        and f"FAIL  socket-dir: refusing to put the socket in {theirs} belongs to uid {NOBODY}" in doctor.stdout
    )


def test_a_group_writable_cache_dir_fails_as_run_refuses_it(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    ctx.paths.cache_dir.mkdir()
    ctx.paths.cache_dir.chmod(0o770)
    result = check_cache_dir_permissions(ctx)[0]
    assert result.status is CheckStatus.FAIL and result.fix == f"chmod 700 {ctx.paths.cache_dir}"


def test_a_daemon_json_that_is_a_directory_fails_as_run_refuses_it(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    ctx.paths.cache_dir.mkdir(mode=0o700)
    assert check_daemon_files(ctx)[0].status is CheckStatus.PASS
    ctx.paths.state.mkdir()
    result = check_daemon_files(ctx)[0]
    assert result.status is CheckStatus.FAIL and result.fix == f"rm -r {ctx.paths.state}"
    run = _cli(tmp_path, "run", "--cache-dir", str(ctx.paths.cache_dir))
    assert run.returncode == 1 and "daemon.json exists and is not a regular file" in run.stderr
    doctor = _cli(tmp_path, "doctor", "--cache-dir", str(ctx.paths.cache_dir))
    assert doctor.returncode == 1 and "FAIL  daemon-files:" in doctor.stdout, doctor.stdout


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_live_pid_in_a_stale_daemon_json_is_not_called_the_lock_holder(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    ctx = _ctx(tmp_path)
    ctx.paths.cache_dir.mkdir(mode=0o700)
    ctx.paths.lock.touch()  # left by the last daemon; nobody holds it
    create_time = psutil.Process(sleeper.pid).create_time()
    ctx.paths.state.write_text(json.dumps({"pid": sleeper.pid, "create_time": create_time}))
    result = _only(check_stale_processes(ctx), "stale-daemon")
    assert result.status is CheckStatus.WARN, result
    assert "holds the lock" not in result.summary and "not a runtimed daemon" in result.summary


def test_a_process_holding_the_lock_without_answering_fails(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    ctx.paths.cache_dir.mkdir(mode=0o700)
    hold = (
        "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX);"
        "print(1, flush=True); time.sleep(120)"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold, str(ctx.paths.lock)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline()  # it holds the lock now
        result = _only(check_stale_processes(ctx), "stale-daemon")
        assert result.status is CheckStatus.FAIL and f"daemon pid {holder.pid} holds the lock" in result.summary
    finally:
        holder.kill()
        holder.wait()


def test_a_cache_dir_that_is_a_file_fails_without_a_traceback(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    doctor = _cli(tmp_path, "doctor", "--cache-dir", str(afile))
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr, doctor.stderr
    assert f"FAIL  cache-dir-owner: {afile} exists and is not a directory" in doctor.stdout
    assert f"FAIL  socket-dir: {afile} exists and is not a directory" in doctor.stdout
