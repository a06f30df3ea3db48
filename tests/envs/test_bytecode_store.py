"""The store's publish/link/GC rules on hand-made files (``runtimed.envs.bytecode_store``)."""

from __future__ import annotations

import importlib.util
import os
import py_compile
from pathlib import Path

import pytest

from runtimed.envs import bytecode_store
from runtimed.envs.bytecode_store import (
    collect_store,
    entry_path,
    link_entry,
    publish_entry,
    pyc_header_matches,
    store_for_backend_cache,
)

MAGIC = importlib.util.MAGIC_NUMBER


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A store, a 'cache' source and its hardlink in an env, with the env's .pyc compiled."""
    store, env = tmp_path / "bytecode", tmp_path / "env"
    env.mkdir()
    (tmp_path / "cache.py").write_text("X = 1\n")
    os.link(tmp_path / "cache.py", env / "mod.py")
    py_compile.compile(str(env / "mod.py"), cfile=str(env / "mod.pyc"), doraise=True)
    return store, env / "mod.py", env / "mod.pyc"


def test_published_entry_is_linked_and_read_only(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    store, source, pyc = setup
    st = source.stat()
    entry = Path(entry_path(store, "tag", st))
    assert pyc_header_matches(pyc, MAGIC, st)
    publish_entry(str(pyc), entry)
    assert entry.stat().st_ino == pyc.stat().st_ino and entry.stat().st_mode & 0o222 == 0
    other = tmp_path / "other.pyc"
    assert link_entry(entry, str(other))
    assert other.stat().st_ino == entry.stat().st_ino
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]  # no temp file left


def test_an_entry_nobody_links_is_not_reused_and_is_collected(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    store, source, pyc = setup
    entry = Path(entry_path(store, "tag", source.stat()))
    publish_entry(str(pyc), entry)
    assert collect_store(store).removed == 0
    pyc.unlink()  # the env is gone
    # Its source inode could be reused by a new file: never link an orphan.
    assert not link_entry(entry, str(tmp_path / "x.pyc"))
    result = collect_store(store)
    assert (result.removed, entry.exists()) == (1, False)
    assert not link_entry(entry, str(tmp_path / "x.pyc"))  # a build that lost the race compiles instead


def test_gc_puts_back_an_entry_a_build_linked_during_collection(
    setup: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, source, pyc = setup
    entry = Path(entry_path(store, "tag", source.stat()))
    publish_entry(str(pyc), entry)
    pyc.unlink()
    real_rename = os.rename
    linked = tmp_path / "linked-by-a-build.pyc"

    def rename_after_a_build_links(src: str, dst: str) -> None:
        os.link(src, linked)  # a build links the entry between GC's check and its rename
        real_rename(src, dst)

    monkeypatch.setattr(bytecode_store.os, "rename", rename_after_a_build_links)
    assert collect_store(store).removed == 0
    assert entry.exists() and entry.stat().st_ino == linked.stat().st_ino
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]


def test_stale_temp_files_are_collected_fresh_ones_kept(tmp_path: Path) -> None:
    fan = tmp_path / "bytecode" / "tag" / "00"
    fan.mkdir(parents=True)
    (fan / "x.pyc.tmp-1-2").write_bytes(b"...")
    (fan / "y.pyc.gc-1-2").write_bytes(b"...")
    assert collect_store(tmp_path / "bytecode").removed == 0
    later = (fan / "x.pyc.tmp-1-2").stat().st_mtime + bytecode_store.TEMP_GRACE_S + 1
    assert collect_store(tmp_path / "bytecode", now=later).removed == 2
    assert list(fan.iterdir()) == []


def test_a_changed_source_no_longer_matches_its_pyc(setup: tuple[Path, Path, Path]) -> None:
    _store, source, pyc = setup
    source.write_text("X = 22\n")
    assert not pyc_header_matches(pyc, MAGIC, source.stat())
    assert not pyc_header_matches(pyc, b"\0\0\r\n", source.stat())


def test_store_follows_the_cache_layout_and_the_switch(tmp_path: Path) -> None:
    backend_cache = tmp_path / "backends" / "uv"
    assert store_for_backend_cache(backend_cache, {}) == tmp_path / "bytecode"
    assert store_for_backend_cache(backend_cache, {"RUNTIMED_SHARE_BYTECODE": "0"}) is None
    assert store_for_backend_cache(tmp_path / "elsewhere", {}) is None
