"""``runtimed config set`` edits the user's file in place: comments, order and
formatting survive (tomlkit); a value the daemon would reject is refused."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from runtimed.config import load_config
from tests.support.daemon import runtimed_cmd

COMMENTED = """\
# My runtimed settings -- keep this comment!
[daemon]
gc_interval_s = 600   # GC every ten minutes

[backends.uv]
# fast envs for notebooks
pool_size = 2          # how many ready
packages = ["numpy", "pandas"]  # the usual
"""


def _set(config: Path, key: str, value: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUNTIMED_CONFIG": str(config)}
    return subprocess.run(runtimed_cmd("config", "set", key, value), env=env, capture_output=True, text=True)


def test_set_keeps_comments_order_and_formatting(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(COMMENTED)
    result = _set(config, "backends.uv.pool_size", "4")
    assert result.returncode == 0, result.stderr
    assert config.read_text() == COMMENTED.replace("pool_size = 2 ", "pool_size = 4 ")
    assert load_config(config).backend("uv").pool_size == 4


def test_set_adds_a_new_table_and_keeps_the_rest(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(COMMENTED)
    assert _set(config, "backends.conda.pool_size", "1").returncode == 0
    text = config.read_text()
    assert text.startswith(COMMENTED)
    assert "[backends.conda]\npool_size = 1\n" in text
    assert load_config(config).backend("conda").pool_size == 1


def test_set_refuses_a_bad_value_and_leaves_the_file_alone(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(COMMENTED)
    result = _set(config, "backends.uv.pool_size", "99")
    assert result.returncode == 2 and "pool_size" in result.stderr
    assert config.read_text() == COMMENTED


def test_show_and_get_give_the_kernel_defaults_in_force(tmp_path: Path) -> None:
    """``kernels`` and ``preimported`` default from other keys: shown as in force, not left out."""
    config = tmp_path / "config.toml"
    config.write_text("[backends.uv]\npool_size = 0\n[backends.conda]\npool_size = 2\npreimported = 0\n")
    env = {**os.environ, "RUNTIMED_CONFIG": str(config)}

    def get(key: str) -> str:
        result = subprocess.run(runtimed_cmd("config", "get", key), env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert (get("backends.uv.kernels"), get("backends.uv.preimported")) == ("0", "0")  # no pool, no kernels
    assert (get("backends.conda.kernels"), get("backends.conda.preimported")) == ("1", "0")
    shown = subprocess.run(runtimed_cmd("config", "show"), env=env, capture_output=True, text=True).stdout
    assert "kernels = 1" in shown and "preimported = 0" in shown
