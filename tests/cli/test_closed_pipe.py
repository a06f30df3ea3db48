"""Every command writing into a pipe whose reader has gone (``runtimed stats --json | head -1``)
exits quietly with 141, as git does: no ``BrokenPipeError`` traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.daemon import DaemonProcess, runtimed_cmd, wait_for
from tests.support.plugins import install_toys

pytestmark = pytest.mark.slow

CONFIG = "[backends.quick]\npool_size = 3\n[daemon]\nlease_check_s = 0.3\n"

# Every command that writes to stdout, in an order that keeps the daemon useful to the next.
COMMANDS = [
    ("--version",),
    ("--help",),
    ("status",),
    ("status", "--json"),
    ("status", "--watch", "--interval", "0.1"),
    ("status", "--watch", "--json", "--interval", "0.1"),
    ("stats",),
    ("stats", "--json"),
    ("ping",),
    ("envs",),
    ("envs", "--json"),
    ("gc", "--dry-run"),
    ("gc", "--json"),
    ("config", "path"),
    ("config", "show"),
    ("config", "get", "backends.quick.pool_size"),
    ("config", "set", "daemon.gc_interval_s", "300"),
    ("kernel", "install", "--name", "piped"),
    ("kernel", "list"),
    ("kernel", "uninstall", "piped"),
    ("plugins", "list"),
    ("plugins", "list", "--json"),
    ("service", "status"),
    ("service", "install", "--dry-run"),
    ("logs",),
    ("logs", "-f"),
    ("doctor",),
    ("doctor", "--json"),
    ("trust", "--list"),
    ("run",),  # "already running"
    ("take", "quick", "--keep"),
    ("take", "quick", "--json", "--keep"),
    ("flush",),
    ("stop",),
]


def into_closed_pipe(env: dict[str, str], argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with stdout a pipe whose read end is already closed."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(argv, env=env, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write_end)


@pytest.fixture
def toy(daemon_factory: type[DaemonProcess], tmp_path: Path) -> tuple[DaemonProcess, dict[str, str]]:
    site = install_toys(tmp_path / "site", quick="")
    daemon = daemon_factory(config=CONFIG, env={"PYTHONPATH": str(site)}).start()
    daemon.wait_pool("quick", 3)
    env = {
        **daemon.env,
        "JUPYTER_DATA_DIR": str(tmp_path / "jupyter"),
        "JUPYTER_PATH": "",
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
    }
    return daemon, env


def test_every_command_exits_quietly_into_a_closed_pipe(toy: tuple[DaemonProcess, dict[str, str]]) -> None:
    daemon, env = toy
    seen = {}
    for args in COMMANDS:
        result = into_closed_pipe(env, runtimed_cmd(*args))
        seen[" ".join(args)] = (result.returncode, result.stderr)
    noisy = {cmd: err for cmd, (_, err) in seen.items() if "Traceback" in err or "Exception ignored" in err}
    assert not noisy, noisy
    codes = {cmd: code for cmd, (code, _) in seen.items()}
    # argparse prints --help and --version itself and ignores a failed write: exit 0, quietly.
    assert codes == {cmd: 0 if cmd in ("--help", "--version") else 141 for cmd in codes}, seen
    assert daemon.proc is not None and daemon.proc.wait(30) == 0  # `stop` did stop it


def test_a_take_into_a_closed_pipe_says_where_the_env_is_and_is_reclaimed(
    toy: tuple[DaemonProcess, dict[str, str]],
) -> None:
    daemon, env = toy
    # The calling shell (sh, the parent of `take`) holds the lease and exits right after.
    shell = f"{' '.join(runtimed_cmd('take', 'quick', '--json'))}; echo $? >&2"
    result = into_closed_pipe(env, ["sh", "-c", shell])
    assert "Traceback" not in result.stderr and result.stderr.rstrip().endswith("141"), result.stderr
    line = next(line for line in result.stderr.splitlines() if "output closed" in line)
    path = Path(line.split("took ")[1].split(":")[0])
    assert path.parent == daemon.cache_dir / "envs" and "leased to pid" in line
    wait_for(lambda: not path.exists(), timeout=60, what="the env of the exited shell to be deleted")
    kept = into_closed_pipe(env, runtimed_cmd("take", "quick", "--json", "--keep"))
    line = next(line for line in kept.stderr.splitlines() if "output closed" in line)
    assert "it is yours (--keep)" in line and Path(line.split("took ")[1].split(":")[0]).is_dir()
