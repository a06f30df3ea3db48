"""The argv launcher's command line and its idea of where the daemon is (no daemon)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from runtimed.envscripts import kernel_launcher as launcher
from runtimed.kernels.provisioner import kernel_arguments
from runtimed.kernels.specs import kernel_spec
from runtimed.util.paths import Paths

VSCODE = [
    "--ip=127.0.0.1",
    "--stdin=9003",
    "--control=9004",
    "--hb=9005",
    '--Session.signature_scheme="hmac-sha256"',
    '--Session.key=b"c0ffee"',
    "--shell=9001",
    '--transport="tcp"',
    "--iopub=9002",
    "--f=/nowhere/kernel-v2-1.json",
]


def test_vscode_flags_give_the_whole_connection_and_leave_other_arguments() -> None:
    launch = launcher.Launch(["--python", "/py", "--backend=conda", "--matplotlib=inline", *VSCODE])
    assert (launch.python, launch.backend, launch.socket) == ("/py", "conda", None)
    assert launch.connection == {
        "ip": "127.0.0.1",
        "transport": "tcp",
        "signature_scheme": "hmac-sha256",
        "key": "c0ffee",
        "shell_port": 9001,
        "iopub_port": 9002,
        "stdin_port": 9003,
        "control_port": 9004,
        "hb_port": 9005,
    }
    assert launcher.complete(launch.connection)
    assert launch.connection_file == "/nowhere/kernel-v2-1.json"
    assert launch.extra == ["--matplotlib=inline"]
    assert launch.kernel_args == ["--matplotlib=inline", *VSCODE]  # what a plain kernel gets


def test_a_connection_file_is_read_and_flags_override_it(tmp_path: Path) -> None:
    info = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5, "key": "k"}
    (tmp_path / "c.json").write_text(json.dumps(info))
    launch = launcher.Launch(["-f", str(tmp_path / "c.json"), "--hb=6"])
    assert launch.connection == {**info, "hb_port": 6}
    assert launch.connection_file == str(tmp_path / "c.json") and launch.extra == []
    assert not launcher.complete({**info, "hb_port": 0})  # a port the kernel is to choose


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"XDG_CACHE_HOME": "/xdg/cache"},
        {"XDG_CACHE_HOME": "relative/cache"},  # not absolute: ignored
        {"XDG_CACHE_HOME": ""},
        {"RUNTIMED_CACHE_DIR": "/some/cache"},
        {"RUNTIMED_CACHE_DIR": "rel/cache"},
        {"RUNTIMED_CACHE_DIR": "/long/" + "x" * 120},  # too long for sun_path: the fallback dir
        {"RUNTIMED_SOCKET": "/run/rt.sock", "RUNTIMED_CACHE_DIR": "/c"},
        {"RUNTIMED_SOCKET": "rel.sock"},
        {"HOME": "relative-home"},
    ],
)
def test_socket_resolution_is_runtimeds(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_CACHE_HOME", "RUNTIMED_CACHE_DIR", "RUNTIMED_SOCKET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert launcher.default_socket() == str(Paths.resolve().socket)
    assert launcher.default_socket("/given") == str(Paths.resolve(cache_dir="/given").socket)


def test_the_provisioner_reads_the_kernel_arguments_of_launcher_specs() -> None:
    for portable in (False, True):
        argv: list[str] = kernel_spec("uv", socket="/s", cache_dir="/c", portable=portable)["argv"]  # type: ignore[assignment]
        assert kernel_arguments(argv, ["--x=1"]) == ["--x=1"]
        assert kernel_arguments([*argv, "--matplotlib=inline"], []) == ["--matplotlib=inline"]
    assert kernel_arguments([sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], []) == []
    assert kernel_arguments(["/py", "-m", "mykernel", "-f", "{connection_file}"], []) is None
