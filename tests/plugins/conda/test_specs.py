"""What a conda env asks for: spec names, merging, python, channels, and the spec hash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rattler import MatchSpec

from runtimed.config import BackendConfig
from runtimed_conda import CondaBackend
from runtimed_conda.specs import channel_source, is_local_channel, merge_specs, python_spec, spec_name


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("numpy", "numpy"),
        ("numpy>=2", "numpy"),
        ("numpy 2.*", "numpy"),
        ("python=3.12", "python"),
        ("conda-forge::numpy >=2", "numpy"),
        ("conda-forge/linux-64::NumPy", "numpy"),
        ("backports.zoneinfo", "backports.zoneinfo"),
        ("jupyter_client[version='>=8']", "jupyter_client"),
    ],
)
def test_spec_name_agrees_with_rattler(spec: str, name: str) -> None:
    assert spec_name(spec) == name
    parsed = MatchSpec(spec).name
    assert parsed is not None and parsed.normalized == name


@pytest.mark.parametrize(
    ("python", "spec"),
    [
        ("3.12", "python=3.12"),
        ("3.11.7", "python=3.11.7"),
        (">=3.10", "python>=3.10"),
        ("python 3.12.*", "python 3.12.*"),
    ],
)
def test_python_spec(python: str, spec: str) -> None:
    assert python_spec(python) == spec
    MatchSpec(spec)


def test_configured_specs_replace_base_packages_of_the_same_name() -> None:
    base = ("python", "ipykernel", "ipywidgets")
    assert merge_specs(base, []) == ["python", "ipykernel", "ipywidgets"]
    assert merge_specs(base, ["python=3.12", "numpy", "numpy"]) == ["ipykernel", "ipywidgets", "python=3.12", "numpy"]
    assert merge_specs(base, ["ipykernel>=6.29"]) == ["python", "ipywidgets", "ipykernel>=6.29"]


def test_backend_packages_include_python_and_configured_specs() -> None:
    backend = CondaBackend()
    assert backend.packages(BackendConfig()) == ["python", "ipykernel", "ipywidgets"]
    config = BackendConfig(python="3.11", packages=["numpy"])
    assert backend.packages(config) == ["ipykernel", "ipywidgets", "python=3.11", "numpy"]


def test_spec_hash_covers_channels_python_and_packages() -> None:
    backend = CondaBackend()
    base = BackendConfig()
    variants = [
        BackendConfig(channels=["file:///srv/channel"]),
        BackendConfig(python="3.12"),
        BackendConfig(packages=["numpy"]),
    ]
    hashes = {backend.spec_hash(c) for c in [base, *variants]}
    assert len(hashes) == 4
    assert backend.spec_hash(BackendConfig()) == backend.spec_hash(base)
    # Pool size and concurrency do not change what an env contains.
    assert backend.spec_hash(BackendConfig(pool_size=5, concurrency=2)) == backend.spec_hash(base)


def test_channel_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert channel_source("conda-forge") == "conda-forge"
    assert channel_source("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert channel_source("./chan") == os.path.join(tmp_path, "chan")
    assert channel_source("~/chan") == os.path.join(tmp_path, "chan")
    for local in ("/srv/chan", "file:///srv/chan", "./chan", "~/chan"):
        assert is_local_channel(local), local
    for remote in ("conda-forge", "http://127.0.0.1:8000", "https://conda.anaconda.org/bioconda"):
        assert not is_local_channel(remote), remote
