"""The pixi plugin reading workspaces (``read_project``): pixi.toml, pyproject.toml with
[tool.pixi], a hand-written pixi.lock (version 6), and malformed manifests. Nothing is installed."""

from __future__ import annotations

from pathlib import Path

import pytest
from rattler import BuildString, MatchSpec, PackageRecord

from runtimed.backend import BackendConfig
from runtimed_pixi import PixiBackend
from runtimed_pixi.conda import current_platform
from tests.examples.pixi_lock import SIX_1_16, write_lock, write_manifest

pytestmark = pytest.mark.skipif(current_platform() != "linux-64", reason="the manifests here expect linux-64")

WORKSPACE = """
[workspace]
name = "demo"
channels = ["conda-forge", "./local-channel", {channel = "https://example.org/extra", priority = 1}]
platforms = ["linux-64", "osx-arm64"]

[dependencies]
python = "3.11.*"
numpy = ">=1.26,<3"
pandas = { version = ">=2", channel = "conda-forge", build = "py*" }

[target.linux-64.dependencies]
rt-hello = "*"

[target.osx.dependencies]
rt-mac-only = "*"

[pypi-dependencies]
six = "*"
requests = { version = ">=2.28", extras = ["socks"] }
mylib = { path = "./mylib" }
exact = "1.2"
"""


def _channel_entry(name: str) -> dict[str, object]:
    url = f"https://example.org/ch/noarch/{name}-1.0.0-0.conda"
    return {"conda": url, "sha256": "00" * 32, "md5": "00" * 16, "size": 10}


def test_a_pixi_toml_is_read_for_this_platform(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, WORKSPACE)
    spec = PixiBackend().read_project(manifest)
    assert spec is not None and spec.file == manifest and not spec.locked
    assert spec.channels == ("conda-forge", str(tmp_path / "local-channel"), "https://example.org/extra")
    assert spec.packages == (
        "python 3.11.*",
        "numpy >=1.26,<3",
        "conda-forge::pandas >=2 py*",
        "rt-hello",
    )
    assert spec.python == "3.11.*"
    assert spec.pypi_packages == (
        "six",
        "requests[socks]>=2.28",
        f"mylib @ {(tmp_path / 'mylib').as_uri()}",
        "exact==1.2",
    )
    assert spec.inputs == (manifest, manifest.with_name("pixi.lock"))  # a lock written later is an input


def test_a_pyproject_with_tool_pixi(tmp_path: Path) -> None:
    text = """
[project]
name = "demo"
requires-python = ">=3.10"
dependencies = ["attrs>=23"]

[tool.pixi.workspace]
channels = ["conda-forge"]
platforms = ["linux-64"]

[tool.pixi.dependencies]
rt-hello = "*"

[tool.pixi.pypi-dependencies]
six = "*"
"""
    spec = PixiBackend().read_project(write_manifest(tmp_path, text, "pyproject.toml"))
    assert spec is not None
    assert spec.packages == ("rt-hello", "python >=3.10") and spec.python == ">=3.10"
    assert spec.pypi_packages == ("attrs>=23", "six")


def test_a_pyproject_without_tool_pixi_is_not_a_workspace(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, '[project]\nname = "x"\ndependencies = ["six"]\n', "pyproject.toml")
    assert PixiBackend().read_project(manifest) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[workspace\nname = 1", "not valid TOML"),
        ('[dependencies]\nnumpy = "*"\n', r"no \[workspace\] table"),
        ('[workspace]\nchannels = "conda-forge"\n', "channels must be a list"),
        ('[workspace]\nchannels = []\nplatforms = ["osx-arm64", "win-64"]\n', "do not include linux-64"),
        ("[workspace]\nchannels = []\n[dependencies]\nnumpy = 3\n", "dependency 'numpy' must be a version string"),
        ('[workspace]\nchannels = []\n[dependencies]\nnumpy = ">=>1"\n', "not a valid conda spec"),
        ('[workspace]\nchannels = []\n[dependencies]\nlib = { path = "." }\n', "path is not supported"),
        ('[workspace]\nchannels = []\n[pypi-dependencies]\nsix = "=<<1"\n', "not a valid PyPI requirement"),
    ],
)
def test_a_malformed_manifest_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    manifest = write_manifest(tmp_path, text)
    with pytest.raises(ValueError, match=message) as caught:
        PixiBackend().read_project(manifest)
    assert str(manifest) in str(caught.value)


def test_a_malformed_tool_pixi_table(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, '[tool.pixi.dependencies]\nrt-hello = "*"\n', "pyproject.toml")
    with pytest.raises(ValueError, match=r"no \[tool.pixi.workspace\] table"):
        PixiBackend().read_project(manifest)


LOCKED = """
[workspace]
channels = ["https://example.org/ch"]
[dependencies]
rt-a = "*"
[pypi-dependencies]
six = "*"
"""


def test_a_pixi_lock_pins_the_workspace(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, LOCKED)
    entries = [_channel_entry("rt-a"), _channel_entry("rt-b")]
    lock = write_lock(tmp_path, ["https://example.org/ch/"], entries, [SIX_1_16])
    spec = PixiBackend().read_project(manifest)
    assert spec is not None and spec.locked and spec.inputs == (manifest, lock)
    assert spec.packages == ("rt-a ==1.0.0 0", "rt-b ==1.0.0 0")
    assert spec.pypi_packages == (f"six @ {SIX_1_16.url}",)


def test_a_lock_that_misses_a_dependency_is_out_of_date(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, LOCKED.replace('rt-a = "*"', 'rt-a = "*"\nrt-new = "*"'))
    write_lock(tmp_path, ["https://example.org/ch/"], [_channel_entry("rt-a")], [SIX_1_16])
    with pytest.raises(ValueError, match=r"pixi.lock is out of date: it locks no rt-new"):
        PixiBackend().read_project(manifest)


def test_a_lock_for_another_platform(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, LOCKED)
    write_lock(tmp_path, ["https://example.org/ch/"], [_channel_entry("rt-a")], [SIX_1_16], platform="osx-arm64")
    with pytest.raises(ValueError, match="locks no default environment for linux-64"):
        PixiBackend().read_project(manifest)


def test_a_broken_lock(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, LOCKED)
    (tmp_path / "pixi.lock").write_text("version: 6\nenvironments: [\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a readable lock file"):
        PixiBackend().read_project(manifest)


@pytest.mark.parametrize(
    ("python", "spec"),
    [("3.11", "python=3.11"), (">=3.10", "python>=3.10"), ("python 3.11.*", "python 3.11.*")],
)
def test_the_pool_python_is_a_version_prefix(python: str, spec: str) -> None:
    """``python = "3.11"`` in [backends.pixi] means any 3.11.x, as for the conda backend."""
    packages = PixiBackend().packages(BackendConfig(python=python, packages=["ipykernel>=6"]))
    assert packages == ["ipywidgets", spec, "ipykernel>=6"]
    assert MatchSpec(spec).matches(PackageRecord("python", "3.11.7", BuildString("0"), 0, "linux-64"))
