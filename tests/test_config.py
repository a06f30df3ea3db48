"""Configuration parsing: strict, with errors that name the key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtimed.config import BackendConfig, Config, ConfigError, load_config, parse_config, parse_duration


def test_no_file_means_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path / "missing.toml")
    assert config == Config()
    assert config.backend("uv").pool_size == 2
    assert config.backend("conda").channels == ["conda-forge"]


def test_design_example_parses(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        """
[backends.uv]
pool_size = 3
packages = ["ipykernel", "ipywidgets", "numpy"]

[backends.conda]
pool_size = 2
channels = ["conda-forge"]
packages = ["python=3.12", "ipykernel", "ipywidgets"]
max_age = "12h"
"""
    )
    config = load_config(path)
    assert config.backend("uv").packages == ["ipykernel", "ipywidgets", "numpy"]
    assert config.backend("conda").max_age_s == 12 * 3600


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[backends.uv]\npool_sise = 3\n", "pool_sise"),
        ("[backends.uv]\npool_size = '3'\n", "pool_size"),
        ("[backends.uv]\npool_size = 21\n", "pool_size"),
        ("[backends.uv]\npool_size = -1\n", "pool_size"),
        ("[backends.uv]\npackages = 'numpy'\n", "packages"),
        ("[backends.uv]\nmax_age = 'forever'\n", "max_age"),
        ("[backends.uv]\nconcurrency = 0\n", "concurrency"),
        ("[backend.uv]\npool_size = 1\n", "backend"),
        ("[backends.uv\n", "invalid TOML"),
        # Accepted before, nonsense all the same (issue 10): every numeric field is bounded.
        ("[supervision]\nmemory_limit_mb = -1\n", "memory_limit_mb"),
        ("[supervision]\nmemory_limit_mb = 4\n", "memory_limit_mb"),
        ("[supervision]\nmax_restarts = 0\n", "max_restarts"),
        ("[supervision]\nstart_grace_s = nan\n", "start_grace_s"),
        ("[supervision]\nrestart_base_s = -0.5\n", "restart_base_s"),
        ("[supervision]\nrestart_cap_s = inf\n", "restart_cap_s"),
        ("[supervision]\nrestart_window_s = 0\n", "restart_window_s"),
        ("[supervision]\nfailed_cooldown_s = 1e300\n", "failed_cooldown_s"),
        ("[daemon]\nlease_check_s = nan\n", "lease_check_s"),
        ("[daemon]\nmax_connections = 2147483648\n", "max_connections"),
        ("[daemon]\nmax_connections = 0\n", "max_connections"),
        ("[daemon]\nidle_timeout_s = -1\n", "idle_timeout_s"),
        ("[daemon]\ngc_interval_s = 0.000001\n", "gc_interval_s"),
        ("[daemon]\nconfig_poll_s = -inf\n", "config_poll_s"),
        ("[backends.uv]\nmax_age = nan\n", "max_age"),
        ("[backends.uv]\nmax_age = '99999d'\n", "max_age"),
        ("[backends.uv]\nbuild_timeout = nan\n", "build_timeout"),
        ("[backends.uv]\nconcurrency = 100000\n", "concurrency"),
        ("[daemon]\nkernel_variants = 0\n", "kernel_variants"),
        ("[daemon]\nkernel_variants = 17\n", "kernel_variants"),
    ],
)
def test_bad_config_names_key_and_file(tmp_path: Path, toml: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value)


def test_with_backend_overrides_one_field() -> None:
    config = parse_config({"backends": {"uv": {"packages": ["numpy"]}}})
    changed = config.with_backend("uv", pool_size=0)
    assert changed.backend("uv") == BackendConfig(pool_size=0, packages=["numpy"])
    assert config.backend("uv").pool_size == 2


def test_durations() -> None:
    assert parse_duration("2d") == 172800
    assert parse_duration(90) == 90
    assert parse_duration("1.5h") == 5400
    for bad in ("", "2w", "-1", 0, True):
        with pytest.raises(ValueError):
            parse_duration(bad)  # type: ignore[arg-type]
