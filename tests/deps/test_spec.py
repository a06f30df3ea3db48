"""DependencySpec: normalised (names as PEP 503, order, duplicates) and keyed stably."""

from __future__ import annotations

import pytest

from runtimed.deps import Backend, DependencySpec, Source
from runtimed.deps.spec import has_direct_reference, normalise_conda, normalise_requirement


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("Foo_Bar.baz", "foo-bar-baz"),
        ("foo--BAR", "foo-bar"),
        ("Requests [Socks, security] >= 2.0 , <3", "requests[security,socks]<3,>=2.0"),
        ('six; python_version < "3.12"', 'six; python_version < "3.12"'),
        ("Pkg @ https://example.org/pkg.whl", "pkg @ https://example.org/pkg.whl"),
        ("Pkg@https://example.org/pkg.whl", "pkg @ https://example.org/pkg.whl"),
    ],
)
def test_requirements_are_normalised(given: str, normalised: str) -> None:
    assert normalise_requirement(given) == normalised


def test_a_package_that_is_no_requirement_is_refused() -> None:
    with pytest.raises(ValueError, match="not a requirement"):
        DependencySpec.create(Backend.UV, [">=1.0"])


def test_order_case_spelling_and_duplicates_do_not_change_the_spec_or_its_key() -> None:
    a = DependencySpec.create(Backend.UV, ["pandas", "Six>=1", "httpx"])
    b = DependencySpec.create(Backend.UV, ["httpx", "six >= 1", "PANDAS", "pandas"], source=Source.PEP723)
    assert a.packages == ("httpx", "pandas", "six>=1")
    assert a == DependencySpec.create(Backend.UV, a.packages)
    assert a.key == b.key  # the source is not part of the key


@pytest.mark.parametrize(
    "changed",
    [
        {"packages": ["httpx", "six>=2"]},
        {"python": ">=3.12"},
        {"uv_options": {"exclude-newer": "2025-01-01T00:00:00Z"}},
        {"pins": ["httpx==0.28.1"]},
        {"backend": Backend.CONDA},
    ],
)
def test_the_key_covers_everything_that_decides_what_is_installed(changed: dict[str, object]) -> None:
    base: dict[str, object] = {"backend": Backend.UV, "packages": ["httpx", "six>=1"], "python": ">=3.11"}
    assert DependencySpec.create(**{**base, **changed}).key != DependencySpec.create(**base).key  # type: ignore[arg-type]


def test_the_key_is_stable_across_runs() -> None:
    spec = DependencySpec.create(Backend.UV, ["six"], python=">=3.10")
    assert spec.key == "a550c6d8fc88f2440c8575fdc631a548"


def test_conda_names_are_lower_cased_but_not_folded_and_channels_keep_their_order() -> None:
    spec = DependencySpec.create(
        Backend.CONDA, ["NumPy >=1.26", "python_abi", "conda-forge::Pandas"], channels=["bioconda", "conda-forge"]
    )
    assert spec.packages == ("conda-forge::pandas", "numpy >=1.26", "python_abi")
    assert spec.channels == ("bioconda", "conda-forge")
    assert normalise_conda("python-abi") != normalise_conda("python_abi")
    assert DependencySpec.create(Backend.CONDA, ["numpy"], channels=["conda-forge", "bioconda"]).key != (
        DependencySpec.create(Backend.CONDA, ["numpy"], channels=["bioconda", "conda-forge"]).key
    )


def test_uv_options_come_back_as_a_table() -> None:
    spec = DependencySpec.create(Backend.UV, ["six"], uv_options={"exclude-newer": "2025-01-02T00:00:00Z"})
    assert spec.uv_option("exclude-newer") == "2025-01-02T00:00:00Z"
    assert spec.uv_option("index-url") is None


def test_direct_references_are_recognised() -> None:
    assert has_direct_reference("pkg @ https://example.org/pkg.whl")
    assert not has_direct_reference('six; python_version >= "3" and platform_machine != "x@y"')
