"""``runtimed doctor`` end to end: a healthy setup passes; broken ones fail naming the check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import DaemonProcess, runtimed_cmd


@pytest.fixture
def daemon_env(daemon_factory: type[DaemonProcess], tmp_path: Path) -> Iterator[tuple[DaemonProcess, dict[str, str]]]:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\n").start()
    env = {
        **daemon.env,
        "JUPYTER_DATA_DIR": str(tmp_path / "jupyter"),
        "JUPYTER_PATH": "",
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
    }
    yield daemon, env


def doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(runtimed_cmd("doctor", *args), env=env, capture_output=True, text=True, timeout=300)


def _checks(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {c["check"]: c["status"] for c in json.loads(result.stdout)["checks"]}


def test_healthy_setup_passes(daemon_env: tuple[DaemonProcess, dict[str, str]]) -> None:
    daemon, env = daemon_env
    daemon.wait_pool("uv", 1)
    subprocess.run(runtimed_cmd("kernel", "install"), env=env, check=True, capture_output=True, timeout=60)
    result = doctor(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout
    checks = _checks(doctor(env, "--json"))
    for name in ("config", "daemon", "socket", "cache-dir-writable", "free-disk", "stale-processes", "uv",
                 "uv-python", "plugin:uv", "kernelspec:runtimed-uv", "service"):  # fmt: skip
        assert checks[name] == "pass", (name, checks)
    assert checks["cache-dir-owner"] in ("pass", "warn")  # a tmp dir may be 0755


def test_deleted_kernelspec_python_fails_naming_the_check(
    daemon_env: tuple[DaemonProcess, dict[str, str]], tmp_path: Path
) -> None:
    _, env = daemon_env
    venv = tmp_path / "kernel-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    kernels = tmp_path / "jupyter" / "kernels"
    subprocess.run(runtimed_cmd("kernel", "install", "--name", "doomed"), env=env, check=True, timeout=60)
    spec_file = kernels / "doomed" / "kernel.json"
    spec = json.loads(spec_file.read_text())
    spec["argv"][0] = str(python)
    spec_file.write_text(json.dumps(spec))
    assert doctor(env).returncode == 0
    python.unlink()
    result = doctor(env)
    assert result.returncode == 1
    line = next(line for line in result.stdout.splitlines() if line.startswith("FAIL"))
    assert line.startswith(f"FAIL  kernelspec:doomed: {spec_file} runs {python}, which no longer exists")
    assert "fix: `runtimed kernel install --name doomed` again" in result.stdout


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


def test_unwritable_cache_dir_fails_naming_the_check(tmp_path: Path) -> None:
    # Root ignores permission bits, so make the cache dir really read-only: a tmpfs remounted ro.
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)):
        pytest.skip("cannot mount a tmpfs here (needs root) to make a read-only cache dir")
    try:
        (mnt / "cache").mkdir(mode=0o700)
        assert _mount("-o", "remount,ro", str(mnt))
        env = {
            **os.environ,
            "RUNTIMED_CACHE_DIR": str(mnt / "cache"),
            "RUNTIMED_CONFIG": str(tmp_path / "c.toml"),
            "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        }
        result = doctor(env)
        assert result.returncode == 1
        fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
        assert any(line.startswith(f"FAIL  cache-dir-writable: cannot write in {mnt / 'cache'}") for line in fails)
        assert "Read-only file system" in result.stdout
        assert _checks(doctor(env, "--json"))["cache-dir-writable"] == "fail"
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_help_for_the_ops_commands() -> None:
    for args in (["service"], ["service", "install"], ["service", "uninstall"], ["service", "status"], ["logs"],
                 ["doctor"]):  # fmt: skip
        result = subprocess.run(runtimed_cmd(*args, "--help"), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "usage: runtimed" in result.stdout, args
