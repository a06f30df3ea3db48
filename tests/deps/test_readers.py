"""Reading a notebook's dependencies from its JSON: nteract metadata (new and old
placement), a PEP 723 block in the first code cell, juv's lock; the both-kinds rule."""

from __future__ import annotations

from typing import Any

import pytest

from runtimed.deps import Backend, Source, notebook_deps, read_deps
from tests.deps.notebooks import PEP723, notebook

UV = {"dependencies": ["pandas", "NumPy"], "requires-python": ">=3.10"}
CONDA = {"dependencies": ["numpy"], "channels": ["conda-forge"], "python": "3.12"}

LOCK = """\
version = 1
requires-python = ">=3.11"

[manifest]
requirements = [{ name = "httpx" }, { name = "six" }]

[[package]]
name = "httpx"
version = "0.28.1"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "Six"
version = "1.17.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "local-thing"
version = "0.1.0"
source = { directory = "../local" }
"""


def test_a_notebook_without_dependencies_has_none() -> None:
    assert read_deps(notebook(("code", "print(1)"), runt={"env_id": "x"})) is None
    assert read_deps({"cells": [], "metadata": {}}) is None


@pytest.mark.parametrize(
    ("metadata", "source"), [({"runt": {"uv": UV}}, Source.NTERACT), ({"uv": UV}, Source.NTERACT_OLD)]
)
def test_nteract_uv_metadata_new_and_old_placement(metadata: dict[str, Any], source: Source) -> None:
    spec = read_deps(notebook(("code", "import pandas"), **metadata))
    assert spec is not None
    assert (spec.backend, spec.packages, spec.python, spec.source) == (
        Backend.UV,
        ("numpy", "pandas"),
        ">=3.10",
        source,
    )


@pytest.mark.parametrize(
    ("metadata", "source"), [({"runt": {"conda": CONDA}}, Source.NTERACT), ({"conda": CONDA}, Source.NTERACT_OLD)]
)
def test_nteract_conda_metadata_new_and_old_placement(metadata: dict[str, Any], source: Source) -> None:
    spec = read_deps(notebook(**metadata))
    assert spec is not None
    assert (spec.backend, spec.packages, spec.channels, spec.python) == (
        Backend.CONDA,
        ("numpy",),
        ("conda-forge",),
        "3.12",
    )
    assert spec.source is source


@pytest.mark.parametrize("as_lines", [False, True])
def test_a_pep723_block_in_the_first_code_cell(as_lines: bool) -> None:
    nb = notebook(("markdown", "# /// script\n# dependencies = ['nope']\n# ///"), ("code", PEP723))
    if as_lines:
        nb["cells"][1]["source"] = PEP723.splitlines(keepends=True)
    spec = read_deps(nb)
    assert spec is not None
    assert (spec.packages, spec.python, spec.source) == (("httpx", "six"), ">=3.11", Source.PEP723)


def test_a_block_in_a_later_code_cell_is_not_read() -> None:
    assert read_deps(notebook(("code", "import os"), ("code", PEP723))) is None


def test_the_tool_uv_table_is_kept() -> None:
    source = '# /// script\n# dependencies = ["six"]\n#\n# [tool.uv]\n# exclude-newer = "2025-01-02T00:00:00Z"\n# ///'
    spec = read_deps(notebook(("code", source)))
    assert spec is not None
    assert spec.uv_option("exclude-newer") == "2025-01-02T00:00:00Z"


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("# /// script\n# dependencies = [\n# ///", "invalid TOML"),
        ("# /// script\n# dependencies = 'six'\n# ///", "list of strings"),
        ("# /// script\n# dependencies = []\n# ///\nx = 1\n# /// script\n# dependencies = []\n# ///", "more than one"),
    ],
)
def test_an_invalid_block_is_an_error(source: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        read_deps(notebook(("code", source)))


def test_invalid_metadata_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"metadata\.runt\.uv\.dependencies must be a list of strings"):
        read_deps(notebook(runt={"uv": {"dependencies": "pandas"}}))


def test_the_pep723_block_wins_over_nteract_metadata() -> None:
    spec = read_deps(notebook(("code", PEP723), runt={"uv": UV}))
    assert spec is not None
    assert spec.source is Source.PEP723


def test_the_lock_pins_what_is_installed_from_a_registry() -> None:
    spec = read_deps(notebook(("code", PEP723), **{"uv.lock": LOCK}))
    assert spec is not None
    assert spec.pins == ("httpx==0.28.1", "six==1.17.0")
    assert spec.packages == ("httpx", "six")


def test_a_stale_lock_is_ignored_with_a_note() -> None:
    stale = PEP723.replace('"Six"', '"Six", "attrs"')
    deps = notebook_deps(notebook(("code", stale), **{"uv.lock": LOCK}))
    assert deps.spec is not None
    assert deps.spec.pins == ()
    assert "stale" in deps.notes[0]


def test_an_invalid_lock_is_ignored_with_a_note() -> None:
    deps = notebook_deps(notebook(("code", PEP723), **{"uv.lock": "version = ["}))
    assert deps.spec is not None and deps.spec.pins == ()
    assert "not valid TOML" in deps.notes[0]


@pytest.mark.parametrize(
    ("kernelspec_backend", "served", "ignored"),
    [("uv", Backend.UV, Backend.CONDA), ("conda", Backend.CONDA, Backend.UV), (None, Backend.UV, Backend.CONDA)],
)
def test_both_kinds_the_kernelspecs_backend_serves_its_own(
    kernelspec_backend: str | None, served: Backend, ignored: Backend
) -> None:
    deps = notebook_deps(notebook(runt={"uv": UV, "conda": CONDA}), kernelspec_backend)
    assert deps.spec is not None and deps.ignored is not None
    assert (deps.spec.backend, deps.ignored.backend) == (served, ignored)


@pytest.mark.parametrize("kernelspec_backend", ["uv", "conda", None])
def test_one_kind_only_its_backend_serves_it(kernelspec_backend: str | None) -> None:
    conda_only = read_deps(notebook(runt={"conda": CONDA}), kernelspec_backend)
    uv_only = read_deps(notebook(runt={"uv": UV}), kernelspec_backend)
    assert conda_only is not None and conda_only.backend is Backend.CONDA
    assert uv_only is not None and uv_only.backend is Backend.UV
