"""What the provisioner asks for a notebook's packages: how they are installed (pure)."""

from __future__ import annotations

from runtimed.deps import Backend, DependencySpec
from runtimed.kernels.notebook import package_options
from runtimed.protocol.messages import PackageOptions


def test_uv_requires_python_and_exclude_newer_are_passed_on() -> None:
    spec = DependencySpec.create(Backend.UV, ["six"], python=">=3.11", uv_options={"exclude-newer": "2025-01-02"})
    assert package_options(spec) == PackageOptions(requires_python=">=3.11", exclude_newer="2025-01-02")
    assert package_options(DependencySpec.create(Backend.UV, ["six"])) == PackageOptions()


def conda_python(python: str) -> str | None:
    return package_options(DependencySpec.create(Backend.CONDA, ["numpy"], python=python)).requires_python


def test_a_conda_python_version_is_what_the_envs_python_must_match() -> None:
    assert conda_python("3.12") == "==3.12.*"
    assert conda_python("3.12.1") == "==3.12.1"
    assert conda_python(">=3.10") == ">=3.10"
