"""``runtimed service`` end to end, in a temp HOME / XDG_CONFIG_HOME.

No systemd user manager runs on this machine, so the "manager present" cases use
a stand-in ``systemctl`` on PATH that records its calls and keeps enabled/active
state in files; the "no manager" cases use the real environment.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.daemon import runtimed_cmd

FAKE_SYSTEMCTL = """#!/bin/sh
# Stand-in for `systemctl --user`: logs each call, state lives in $FAKE_SYSTEMD.
echo "$*" >> "$FAKE_SYSTEMD/calls"
shift  # --user
case "$1" in
  show-environment) echo PATH=/bin ;;
  is-enabled) if [ -e "$FAKE_SYSTEMD/enabled" ]; then echo enabled; else echo disabled; exit 1; fi ;;
  is-active) if [ -e "$FAKE_SYSTEMD/active" ]; then echo active; else echo inactive; exit 3; fi ;;
  enable) touch "$FAKE_SYSTEMD/enabled" "$FAKE_SYSTEMD/active" ;;
  start|restart) touch "$FAKE_SYSTEMD/active" ;;
  disable) rm -f "$FAKE_SYSTEMD/enabled" "$FAKE_SYSTEMD/active" ;;
  daemon-reload) ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
"""


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "RUNTIMED_CACHE_DIR": str(tmp_path / "cache"),
    }
    env.pop("RUNTIMED_CONFIG", None)
    return env


def _unit(env: dict[str, str]) -> Path:
    return Path(env["XDG_CONFIG_HOME"]) / "systemd" / "user" / "runtimed.service"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(runtimed_cmd("service", *args), env=env, capture_output=True, text=True, timeout=60)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")) if root.exists() else []


def with_fake_systemctl(env: dict[str, str], tmp_path: Path) -> Path:
    bin_dir, state = tmp_path / "bin", tmp_path / "systemd-state"
    bin_dir.mkdir()
    state.mkdir()
    script = bin_dir / "systemctl"
    script.write_text(FAKE_SYSTEMCTL)
    script.chmod(0o755)
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    env["FAKE_SYSTEMD"] = str(state)
    return state


def test_dry_run_prints_the_unit_and_writes_nothing(home: dict[str, str], tmp_path: Path) -> None:
    result = run(home, "install", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"would write {_unit(home)}" in result.stdout
    assert f"--cache-dir {tmp_path}/cache" in result.stdout  # RUNTIMED_CACHE_DIR is pinned
    assert "KillMode=process" in result.stdout
    assert _files(tmp_path / "xdg") == [] and _files(tmp_path / "home") == []
    plist = run(home, "install", "--dry-run", "--platform", "launchd")
    assert "<key>KeepAlive</key>" in plist.stdout and "LaunchAgents/io.runtimed.daemon.plist" in plist.stdout
    assert _files(tmp_path / "home") == []
    refused = run(home, "install", "--platform", "launchd")  # nothing here could load it
    assert refused.returncode == 2 and "use it with --dry-run" in refused.stderr
    assert _files(tmp_path / "home") == []


def test_install_without_a_manager_is_idempotent_and_uninstalls(home: dict[str, str]) -> None:
    home["PATH"] = "/nonexistent"  # no systemctl at all
    first = run(home, "install")
    assert first.returncode == 0, first.stderr
    unit = _unit(home)
    assert unit.is_file() and "ExecStart=" in unit.read_text()
    assert "systemctl --user daemon-reload && systemctl --user enable --now runtimed.service" in first.stdout
    mtime = unit.stat().st_mtime_ns
    second = run(home, "install")
    assert second.returncode == 0 and "write" not in second.stdout and unit.stat().st_mtime_ns == mtime
    status = run(home, "status")
    assert "installed: yes\n" in status.stdout and "unknown (no service manager running)" in status.stdout
    gone = run(home, "uninstall")
    assert gone.returncode == 0 and f"remove {unit}" in gone.stdout and not unit.exists()
    assert "not installed" in run(home, "uninstall").stdout


def test_with_a_manager_enables_and_never_restarts_without_force(home: dict[str, str], tmp_path: Path) -> None:
    state = with_fake_systemctl(home, tmp_path)
    calls = state / "calls"

    def new_calls() -> list[str]:
        lines = calls.read_text().splitlines() if calls.exists() else []
        calls.unlink(missing_ok=True)
        return [line for line in lines if line.split()[1] not in ("show-environment", "is-enabled", "is-active")]

    assert run(home, "install").returncode == 0
    assert new_calls() == ["--user daemon-reload", "--user enable --now runtimed.service"]
    assert (state / "active").exists()
    status = run(home, "status", "--json")
    assert '"enabled": true' in status.stdout and '"running": true' in status.stdout
    new_calls()

    assert run(home, "install").stdout.strip().endswith("nothing to do.")  # identical: no-op
    assert new_calls() == []

    changed = run(home, "install", "--cache-dir", str(tmp_path / "other"))  # new content, service running
    assert "--force" in changed.stdout
    assert new_calls() == ["--user daemon-reload"]  # written and reloaded, not restarted
    assert "other" in _unit(home).read_text()

    assert run(home, "install", "--force").returncode == 0
    assert new_calls() == ["--user daemon-reload", "--user restart runtimed.service"]

    gone = run(home, "uninstall")
    assert gone.returncode == 0 and not _unit(home).exists()
    assert new_calls() == ["--user disable --now runtimed.service", "--user daemon-reload"]
    assert not (state / "active").exists()


def test_a_failing_manager_command_is_reported(home: dict[str, str], tmp_path: Path) -> None:
    state = with_fake_systemctl(home, tmp_path)
    script = tmp_path / "bin" / "systemctl"
    script.write_text(script.read_text().replace("  daemon-reload) ;;", "  daemon-reload) echo boom >&2; exit 1 ;;"))
    result = run(home, "install")
    assert result.returncode == 1
    assert "daemon-reload` exited with 1: boom" in result.stderr
    assert (state / "calls").exists()
