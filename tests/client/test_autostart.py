"""Auto-start: the setting, the target paths, and real daemons started by `runtimed take`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from runtimed.client import Client, DaemonAbsent, DaemonNotResponding
from runtimed.client.autostart import (
    auto_start,
    auto_start_setting,
    daemon_command,
    parse_switch,
    resolve_target,
    wait_until_answering,
)
from runtimed.config import ConfigError, parse_config
from runtimed.protocol.messages import Ping
from runtimed.util.paths import Paths
from runtimed.util.selfcmd import module_command
from tests.support.autostart import autostart_home, daemon_processes
from tests.support.daemon import DaemonProcess, runtimed_cmd, wait_for

# ---------------------------------------------------------------- the setting (pure)


def test_switch_values() -> None:
    assert [parse_switch(v) for v in ("1", "TRUE", " yes ", "on")] == [True] * 4
    assert [parse_switch(v) for v in ("0", "False", "no", "OFF")] == [False] * 4
    assert parse_switch("maybe") is None


def test_setting_env_then_config(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    assert auto_start_setting(config, {}).enabled  # no file: on by default
    assert not auto_start_setting(config, {"RUNTIMED_AUTO_START": "0"}).enabled
    garbage = auto_start_setting(config, {"RUNTIMED_AUTO_START": "sometimes"})
    assert not garbage.enabled and "'sometimes'" in garbage.source  # fail safe, and say why
    config.write_text("[daemon]\nauto_start = false\n")
    off = auto_start_setting(config, {})
    assert not off.enabled and str(config) in off.source
    assert auto_start_setting(config, {"RUNTIMED_AUTO_START": "1"}).enabled  # the variable wins
    config.write_text("[daemon]\nauto_start = true\n")
    assert auto_start_setting(config, {}).enabled
    # A broken config turns it off whatever the variable says: `runtimed run` would exit 2.
    config.write_text("[daemon]\nauto_start = true\nbogus = 1\n")
    broken = auto_start_setting(config, {"RUNTIMED_AUTO_START": "1"})
    assert not broken.enabled and "bogus" in broken.source


def test_config_key_is_validated() -> None:
    assert parse_config({"daemon": {"auto_start": False}}).daemon.auto_start is False
    with pytest.raises(ConfigError, match="auto_start"):
        parse_config({"daemon": {"auto_start": "no"}})


def test_target_paths_and_command(tmp_path: Path) -> None:
    cache, config = tmp_path / "c", tmp_path / "cfg.toml"
    target = resolve_target(cache_dir=cache, config_file=config)
    assert isinstance(target, Paths) and target.socket == cache / "runtimed.sock"
    command = daemon_command(target)
    assert command[:-6] == module_command("runtimed.cli", "run", "--no-log-stderr")  # see test_selfcmd.py
    flags = dict(zip(command[-6::2], command[-5::2], strict=True))
    assert flags == {"--cache-dir": str(cache), "--socket": str(cache / "runtimed.sock"), "--config": str(config)}
    # A socket pinned without its cache dir belongs to a daemon whose cache dir is unknown.
    refused = resolve_target(socket=tmp_path / "elsewhere.sock")
    assert isinstance(refused, str) and "cache dir is unknown" in refused
    assert isinstance(resolve_target(cache_dir=cache, socket=tmp_path / "s.sock"), Paths)
    # The usual socket, pinned, is fine.
    assert isinstance(resolve_target(socket=Paths.resolve().socket), Paths)


def test_absent_means_no_socket_or_a_stale_one(tmp_path: Path) -> None:
    with pytest.raises(DaemonAbsent):
        Client(tmp_path / "none.sock").connect()
    stale = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))
    s.close()  # left behind, as by a killed daemon: connection refused
    with pytest.raises(DaemonAbsent):
        Client(stale).connect()


# ---------------------------------------------------------------- real daemons


def _take(home: DaemonProcess, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return home.run_cli("take", "--keep", "--json", *args, timeout=timeout)


def test_take_starts_a_detached_daemon_on_the_configured_cache_dir(
    tmp_path: Path, uv_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with autostart_home(tmp_path / "home", uv_cache, monkeypatch) as home:
        # A socket left by a killed daemon counts as no daemon.
        home.cache_dir.mkdir(mode=0o700)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(home.socket))
        s.close()
        result = _take(home, "--wait", "180")
        assert result.returncode == 0, result.stderr
        assert "started the daemon in the background (pid" in result.stderr
        env = json.loads(result.stdout)
        assert env["venv_path"].startswith(str(home.cache_dir / "envs"))
        pid = int(result.stderr.split("(pid ")[1].split(",")[0])
        (daemon,) = home.daemons()
        assert daemon.pid == pid == home.daemon_json()["pid"]
        cmd = daemon.cmdline()
        assert cmd[0] == sys.executable  # this interpreter, so this runtimed version
        assert cmd[cmd.index("--cache-dir") + 1] == str(home.cache_dir)
        assert cmd[cmd.index("--config") + 1] == str(home.config_file)
        # Detached: its own session, reparented away from the client, no terminal output.
        assert os.getsid(pid) == pid and daemon.ppid() != os.getpid()
        assert {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in (0, 1, 2)} == {"/dev/null"}
        assert f"starting (pid {pid})" in home.log_text()
        # With the daemon up, the next take just takes.
        again = _take(home, "--wait", "180")
        assert again.returncode == 0 and "started" not in again.stderr, again.stderr
        assert [p.pid for p in home.daemons()] == [pid]


def test_concurrent_auto_starts_leave_one_daemon(
    tmp_path: Path, uv_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with autostart_home(tmp_path / "home", uv_cache, monkeypatch, config="[backends.uv]\npool_size = 2\n") as home:
        takes = [
            subprocess.Popen(
                runtimed_cmd("take", "--keep", "--json", "--wait", "240"),
                env=home.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=home.base,
            )
            for _ in range(3)
        ]
        outputs = [t.communicate(timeout=300) for t in takes]
        assert [t.returncode for t in takes] == [0, 0, 0], outputs
        envs = {json.loads(out)["venv_path"] for out, _ in outputs}
        assert len(envs) == 3  # each got its own env from the one daemon
        spawned = [int(err.split("(pid ")[1].split(",")[0]) for _, err in outputs if "started the daemon" in err]
        assert spawned  # at least one of them started a daemon
        (daemon,) = home.daemons()
        assert daemon.pid in spawned
        # Whatever lost the race is gone, and only the winner ever ran as a daemon.
        for pid in set(spawned) - {daemon.pid}:
            wait_for(lambda p=pid: not psutil.pid_exists(p), timeout=30, what=f"loser {pid} to exit")
        assert home.log_text().count("starting (pid") == 1


def test_of_ten_racing_auto_starts_only_the_winner_says_it_started_the_daemon(
    tmp_path: Path, uv_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No pool: the takes answer "pool empty" at once; what matters is what they say on the way.
    with autostart_home(tmp_path / "home", uv_cache, monkeypatch, config="[backends.uv]\npool_size = 0\n") as home:
        takes = [
            subprocess.Popen(
                runtimed_cmd("take"), env=home.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(10)
        ]
        errors = [t.communicate(timeout=300)[1] for t in takes]
        said = [err for err in errors if "started the daemon" in err]
        # A loser may still be importing when every take has its answer: wait for it to lose the lock and exit.
        wait_for(lambda: len(home.daemons()) == 1, timeout=60, what="the losing daemons to exit")
        (daemon,) = home.daemons()
        assert len(said) == 1, errors  # nine spawned a daemon that lost the lock and exited: not "started"
        assert int(said[0].split("(pid ")[1].split(",")[0]) == daemon.pid
        assert all("pool empty" in err and "Traceback" not in err for err in errors), errors


def test_two_starts_back_to_back_and_the_losers_exit_code(
    tmp_path: Path, uv_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with autostart_home(tmp_path / "home", uv_cache, monkeypatch) as home:
        first, second = auto_start(), auto_start()  # the first has not taken the lock yet, or has
        assert first.started and first.paths is not None
        assert second.started or "holds" in second.reason
        assert wait_until_answering(first.paths, 60, first.pid) is None
        wait_for(lambda: len(home.daemons()) == 1, timeout=30, what="one daemon")
        # A daemon that loses the lock says so and exits 0 (what a racing loser does).
        loser = subprocess.run(daemon_command(first.paths), capture_output=True, text=True, timeout=60)
        assert loser.returncode == 0 and "already running" in loser.stdout, loser
        # With the daemon listening, auto_start is never asked; if it were, the lock stops it.
        assert not auto_start().started


def test_auto_start_off_by_variable_or_config(tmp_path: Path, uv_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with autostart_home(tmp_path / "home", uv_cache, monkeypatch) as home:
        home.env["RUNTIMED_AUTO_START"] = "0"
        result = _take(home)
        assert result.returncode == 1
        assert "not starting a daemon: auto-start is off (RUNTIMED_AUTO_START=0)" in result.stderr
        assert "runtimed is not running" in result.stderr
        del home.env["RUNTIMED_AUTO_START"]
        home.write_config("[backends.uv]\npool_size = 1\n[daemon]\nauto_start = false\n")
        result = _take(home)
        assert result.returncode == 1 and "[daemon] auto_start = false" in result.stderr, result.stderr
        time.sleep(1.0)  # anything wrongly started would be up by now
        assert not home.daemons() and not (home.cache_dir / "daemon.json").exists()


def test_a_stopped_daemon_is_not_duplicated(
    daemon_factory: type[DaemonProcess], tmp_path: Path, uv_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 0\n", env={"RUNTIMED_AUTO_START": "1"}).start()
    assert daemon.proc is not None
    os.kill(daemon.proc.pid, signal.SIGSTOP)
    try:
        with Client(daemon.socket) as c, pytest.raises(DaemonNotResponding):
            c.request(Ping(), timeout=1.0)
        result = daemon.run_cli("take", timeout=120)
        assert result.returncode == 1
        assert "not responding" in result.stderr and "started" not in result.stderr, result.stderr
        assert [p.pid for p in daemon_processes(daemon.cache_dir)] == [daemon.proc.pid]
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)


def test_doctor_reports_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runtimed.doctor.results import CheckStatus, DoctorContext
    from runtimed.doctor.service_check import check_auto_start

    ctx = DoctorContext(Paths.resolve(cache_dir=tmp_path / "c", config_file=tmp_path / "config.toml"), None)
    monkeypatch.setenv("RUNTIMED_AUTO_START", "0")
    (result,) = check_auto_start(ctx)
    assert result.status is CheckStatus.PASS and result.summary == "auto-start is off (RUNTIMED_AUTO_START=0)"
    monkeypatch.delenv("RUNTIMED_AUTO_START")
    (result,) = check_auto_start(ctx)
    assert result.status is CheckStatus.PASS and "auto-start is on (the default" in result.summary
    monkeypatch.setenv("RUNTIMED_AUTO_START", "perhaps")
    (result,) = check_auto_start(ctx)
    assert result.status is CheckStatus.WARN and result.fix and "RUNTIMED_AUTO_START" in result.fix
