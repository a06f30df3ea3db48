"""The unit and plist renderers (pure), checked by systemd-analyze and plistlib."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runtimed.service.render import (
    LAUNCHD_LABEL,
    render_launchd_plist,
    render_systemd_unit,
    runtimed_command,
    service_spec,
    systemd_quote,
)
from runtimed.util.paths import Paths


def _unit_lines(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


def test_runtimed_command_is_this_installation() -> None:
    argv = runtimed_command()
    assert Path(argv[0]).is_absolute() and os.access(argv[0], os.X_OK)
    assert Path(argv[0]).parent == Path(sys.executable).absolute().parent


def test_systemd_unit_runs_this_runtimed_with_the_pinned_cache_dir(tmp_path: Path) -> None:
    paths = Paths.resolve(cache_dir=tmp_path / "my cache", config_file=tmp_path / "c.toml")
    unit = render_systemd_unit(service_spec(paths))
    keys = _unit_lines(unit)
    assert (
        keys["ExecStart"] == f'{runtimed_command()[0]} run --cache-dir "{tmp_path}/my cache" --config {tmp_path}/c.toml'
    )

    assert keys["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert keys["Restart"] == "on-failure"
    assert keys["KillMode"] == "process"  # handed-out kernels share the cgroup
    assert keys["WantedBy"] == "default.target"
    sock = render_systemd_unit(service_spec(paths, pin_socket=True))
    assert _unit_lines(sock)["ExecStart"].endswith(f' --socket "{paths.socket}"')


def test_systemd_quote() -> None:
    assert systemd_quote("/usr/bin/runtimed") == "/usr/bin/runtimed"
    assert systemd_quote("/a b") == '"/a b"'
    assert systemd_quote("50%") == "50%%"
    assert systemd_quote("$HOME") == '"$$HOME"'
    assert systemd_quote('a"b\\c') == '"a\\"b\\\\c"'


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_accepts_the_unit(tmp_path: Path) -> None:
    paths = Paths.resolve(cache_dir=tmp_path / "odd dir %n $HOME", config_file=tmp_path / "c.toml")
    unit_file = tmp_path / "runtimed.service"
    unit_file.write_text(render_systemd_unit(service_spec(paths)))
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}

    def verify(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["systemd-analyze", "--user", "verify", str(path)], env=env, capture_output=True, text=True, timeout=60
        )

    result = verify(unit_file)
    assert result.returncode == 0, result.stderr
    assert "runtimed.service" not in result.stderr, result.stderr  # warnings name the unit
    # The check has teeth: a bad directive is reported.
    unit_file.write_text(unit_file.read_text().replace("KillMode=process", "KillMode=bogus"))
    assert "bogus" in verify(unit_file).stderr


def test_launchd_plist(tmp_path: Path) -> None:
    paths = Paths.resolve(cache_dir=tmp_path / "cache", config_file=tmp_path / "c.toml")
    spec = service_spec(paths, launchd=True)
    plist = plistlib.loads(render_launchd_plist(spec))
    assert plist["Label"] == LAUNCHD_LABEL
    assert plist["ProgramArguments"] == [
        *runtimed_command(),
        "run",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--config",
        str(tmp_path / "c.toml"),
        "--no-log-stderr",
    ]
    assert plist["KeepAlive"] == {"SuccessfulExit": False}  # "already running, exit 0" does not churn
    assert plist["AbandonProcessGroup"] is True  # stopping the job leaves kernels alone
    assert plist["RunAtLoad"] is True
    assert plist["StandardOutPath"] == plist["StandardErrorPath"] == str(tmp_path / "cache" / "runtimed.log")
