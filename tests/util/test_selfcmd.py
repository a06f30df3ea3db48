"""A clone of runtimed in the cwd shadows nothing (issue 17, item 2): workers, the
plugin probe and an auto-started daemon run their modules without the cwd on
``sys.path`` (``-P``, or the bootstrap for Python 3.10 and other interpreters)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runtimed.util.selfcmd import module_command
from tests.support.autostart import autostart_home
from tests.support.daemon import DaemonProcess, runtimed_script

ONE_UV = "[backends.uv]\npool_size = 1\n"


def fake_clone(parent: Path) -> Path:
    """``parent`` as the top of another checkout of runtimed (say an older version): its
    ``runtimed/`` package comes first on ``sys.path`` for a ``python -m`` run there and
    would replace the installed runtimed whatever the install mode (a regular package,
    unlike the namespace dir a checkout's parent holds, which only shadows the names it
    has: ``runtimed.plugins`` before the layout by concern)."""
    package = parent / "runtimed"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text('raise ImportError("the runtimed of another checkout in the cwd")\n')
    (parent / "plugins" / "uv").mkdir(parents=True, exist_ok=True)
    (parent / "README.md").write_text("runtimed\n")
    return parent


def _describe(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_the_clone_shadows_a_plain_dash_m(tmp_path: Path) -> None:
    """What the fix avoids (so the tests below can fail): ``python -m`` in the checkout."""
    result = _describe([sys.executable, "-m", "runtimed.workers.child", "uv", "--describe"], fake_clone(tmp_path))
    assert result.returncode != 0 and "the runtimed of another checkout in the cwd" in result.stderr


@pytest.mark.parametrize("safe_path_flag", [True, False], ids=["-P", "bootstrap"])
def test_module_command_ignores_the_cwd(tmp_path: Path, safe_path_flag: bool) -> None:
    if safe_path_flag and sys.version_info < (3, 11):
        pytest.skip("-P needs Python 3.11")
    command = module_command("runtimed.workers.child", "uv", "--describe", safe_path_flag=safe_path_flag)
    assert "runtimed.workers.child" in command  # stray workers are found by that word
    result = _describe(command, fake_clone(tmp_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["type"] == "ready"


def test_plugins_list_from_a_clones_parent(tmp_path: Path) -> None:
    result = _describe(runtimed_script("plugins", "list", "--json"), fake_clone(tmp_path))
    assert result.returncode == 0, result.stderr
    assert {p["name"]: p["status"] for p in json.loads(result.stdout)}["uv"] == "active"


@pytest.mark.slow
def test_daemon_started_in_a_clones_parent_builds(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=ONE_UV)
    fake_clone(daemon.base)  # the daemon's cwd
    daemon.command = runtimed_script("run")
    daemon.start()
    daemon.wait_pool("uv", 1)


@pytest.mark.slow
def test_auto_start_from_a_clones_parent_builds(
    tmp_path: Path, uv_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with autostart_home(tmp_path / "home", uv_cache, monkeypatch) as home:
        fake_clone(home.base)  # the front end's cwd and HOME: the auto-started daemon's cwd
        home.env["HOME"] = str(home.base)
        result = subprocess.run(
            runtimed_script("take", "--keep", "--json", "--wait", "180"),
            env=home.env, cwd=home.base, capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
        shutil.rmtree(home.base / "runtimed")  # the cleanup's `python -m runtimed.cli stop` runs there
        assert result.returncode == 0, result.stderr + home.log_text()[-3000:]
        assert json.loads(result.stdout)["venv_path"].startswith(str(home.cache_dir / "envs"))
