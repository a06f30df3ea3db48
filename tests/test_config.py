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
