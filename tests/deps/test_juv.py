"""Notebooks written by juv itself (from PyPI): ``juv init``, ``add``, ``lock``, ``stamp``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtimed.config import tomllib
from runtimed.deps import Backend, Source, TrustStore, read_notebook_deps
from runtimed.deps.spec import DependencySpec

pytestmark = pytest.mark.slow


def _read(path: Path) -> DependencySpec:
    spec, problem = read_notebook_deps(path)
    assert problem is None
    assert spec is not None
    return spec


def test_juv_init_add_lock_stamp(juv: object, tmp_path: Path) -> None:
    run = juv
    assert callable(run)
    nb = tmp_path / "analysis.ipynb"
    run("init", str(nb))
    assert read_notebook_deps(nb) == (None, None)  # an empty block: nothing to install
    run("add", str(nb), "Six>=1.16", "attrs")
    spec = _read(nb)
    assert (spec.backend, spec.source, spec.names, spec.pins) == (Backend.UV, Source.PEP723, ("attrs", "six"), ())
    assert "six>=1.16" in spec.packages
    assert spec.python and spec.python.startswith(">=3.")

    run("lock", str(nb))
    locked = _read(nb)
    lock = tomllib.loads(json.loads(nb.read_text())["metadata"]["uv.lock"])
    expected = sorted(f"{p['name']}=={p['version']}" for p in lock["package"])
    assert list(locked.pins) == expected and {p.split("==")[0] for p in expected} == {"attrs", "six"}
    assert locked.key != spec.key  # exact pins are part of what is approved

    run("stamp", str(nb), "--timestamp", "2025-01-02T00:00:00Z")
    stamped = _read(nb)
    assert stamped.uv_option("exclude-newer") == "2025-01-02T00:00:00+00:00"
    assert stamped.pins == locked.pins


def test_a_juv_notebook_edited_after_trusting_is_untrusted(juv: object, tmp_path: Path) -> None:
    run = juv
    assert callable(run)
    nb = tmp_path / "a.ipynb"
    run("init", str(nb))
    run("add", str(nb), "six")
    store = TrustStore(tmp_path / "trust.json")
    store.approve(_read(nb))
    assert store.is_trusted(_read(nb))
    run("add", str(nb), "attrs")
    assert not store.is_trusted(_read(nb))
