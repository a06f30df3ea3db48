"""Sharing bytecode between real uv envs through the store (``runtimed.envs.bytecode``).

Two uv envs are built once for the module (warm uv cache, a fresh store); the
imports run with PYTHONDONTWRITEBYTECODE unset, so any ``.pyc`` CPython wanted to
(re)write would be written. Edits are made to a module of our own, hardlinked
into both envs the way an installer links from its cache, never to files of the
session's uv cache.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from attrs import define

from runtimed.backend import BuildRequest
from runtimed.config import BackendConfig
from runtimed.envs.build import build_env
from runtimed.envs.bytecode import compile_prefix
from runtimed.envs.bytecode_store import collect_store
from runtimed.envs.envdir import Manifest
from runtimed_uv import UvBackend

TAG = sys.implementation.cache_tag
SITE = Path("lib") / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
KERNELAPP = SITE / "ipykernel" / "kernelapp.py"


@define
class Env:
    path: Path
    manifest: Manifest

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def site(self) -> Path:
        return self.path / SITE


@define
class Pair:
    a: Env
    b: Env
    store: Path
    root: Path


def pyc_of(source: Path) -> Path:
    return source.parent / "__pycache__" / f"{source.stem}.{TAG}.pyc"


def build_uv(path: Path, store: Path | None) -> Env:
    request = BuildRequest(
        env_id=path.name, path=path, config=BackendConfig(), cache_dir=path.parent / "uvc", bytecode_store=store
    )
    return Env(path, build_env(UvBackend(), request))


def run_in(env: Env, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in the env's python with bytecode writing allowed."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run([str(env.python), "-c", code], capture_output=True, text=True, env=clean, check=False)


def pycache_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under a ``__pycache__`` of ``root``: (inode, mtime_ns)."""
    out = {}
    for cache in root.rglob("__pycache__"):
        for f in cache.iterdir():
            st = f.stat()
            out[str(f.relative_to(root))] = (st.st_ino, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, uv_cache: Path) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("sharing")
    store = root / "bytecode"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UV_CACHE_DIR", str(uv_cache))
        mp.setenv("PYTHONDONTWRITEBYTECODE", "1")  # as a worker may have it: sharing must not depend on it
        a = build_uv(root / "envs" / "a", store)
        b = build_uv(root / "envs" / "b", store)
    yield Pair(a, b, store, root)


def test_two_envs_share_pyc_inodes_with_the_store(pair: Pair) -> None:
    src_a, src_b = pair.a.path / KERNELAPP, pair.b.path / KERNELAPP
    assert src_a.stat().st_ino == src_b.stat().st_ino  # uv hardlinked both from its cache
    pyc_a, pyc_b = pyc_of(src_a).stat(), pyc_of(src_b).stat()
    assert pyc_a.st_ino == pyc_b.st_ino
    assert pyc_a.st_nlink >= 3  # store + a + b
    assert stat.S_IMODE(pyc_a.st_mode) & 0o222 == 0  # read-only: nobody writes into a shared .pyc
    details_a, details_b = pair.a.manifest.details["bytecode"], pair.b.manifest.details["bytecode"]
    assert details_a["mode"] == details_b["mode"] == "shared"
    assert details_a["compiled"] > 1000 and details_a["shared"] == 0  # the first env filled the store
    assert details_b["shared"] == details_a["compiled"] and details_b["compiled"] == 0
    in_store = {p.stat().st_ino for p in pair.store.rglob("*.pyc")}
    assert pyc_a.st_ino in in_store
    assert len(in_store) == details_a["compiled"]


def test_a_traceback_in_env_b_names_env_b_files(pair: Pair) -> None:
    code = "from traitlets.utils.importstring import import_item; import_item('rt_no_such_module.x')"
    proc = run_in(pair.b, code)
    assert "ModuleNotFoundError" in proc.stderr
    assert str(pair.b.site / "traitlets" / "utils" / "importstring.py") in proc.stderr
    assert str(pair.a.path) not in proc.stderr
    # co_filename of nested code objects too (the .pyc was compiled from env a's path).
    code = "import ipykernel.kernelapp as k; print(k.IPKernelApp.init_connection_file.__code__.co_filename)"
    proc = run_in(pair.b, code)
    assert proc.stdout.strip() == str(pair.b.path / KERNELAPP)


def test_imports_in_env_b_neither_rewrite_nor_add_pyc(pair: Pair) -> None:
    before = pycache_snapshot(pair.b.path), pycache_snapshot(pair.store)
    proc = run_in(pair.b, "import ipykernel.kernelapp, ipywidgets, IPython, jedi, zmq, tornado.web, prompt_toolkit")
    assert proc.returncode == 0, proc.stderr
    assert (pycache_snapshot(pair.b.path), pycache_snapshot(pair.store)) == before


def _hardlinked_module(pair: Pair, name: str, text: str) -> tuple[Path, Path]:
    """A module installed in both envs as hardlinks of one 'cache' file, with shared bytecode."""
    cache = pair.root / "fake-cache"
    cache.mkdir(exist_ok=True)
    (cache / f"{name}.py").write_text(text)
    paths = (pair.a.site / f"{name}.py", pair.b.site / f"{name}.py")
    for path in paths:
        os.link(cache / f"{name}.py", path)
        compile_prefix(path.parents[3] / "bin" / "python", path.parents[3], pair.store)
    assert pyc_of(paths[0]).stat().st_ino == pyc_of(paths[1]).stat().st_ino
    return paths


def test_an_editor_replacing_a_file_in_env_b_changes_env_b_only(pair: Pair) -> None:
    in_a, in_b = _hardlinked_module(pair, "rt_renamed", "def answer():\n    return 1\n")
    shared = pyc_of(in_a).read_bytes()
    # Write-and-rename (most editors, sed -i): env b's file becomes a new inode. The new
    # text has another size: a timestamp .pyc records the source's mtime in whole seconds
    # and its size, so a same-size edit within the same second is invisible to CPython
    # with or without sharing (that was this test's flake, not a sharing bug).
    (in_b.parent / "rt_renamed.py.new").write_text("def answer():\n    return 22\n")
    os.replace(in_b.parent / "rt_renamed.py.new", in_b)
    assert run_in(pair.b, "import rt_renamed; print(rt_renamed.answer())").stdout.strip() == "22"
    assert run_in(pair.a, "import rt_renamed; print(rt_renamed.answer())").stdout.strip() == "1"
    # Env b's import wrote its own .pyc (temp + rename): a's, and the store's, are intact.
    assert pyc_of(in_a).read_bytes() == shared and pyc_of(in_a).stat().st_nlink >= 2
    assert pyc_of(in_b).stat().st_ino != pyc_of(in_a).stat().st_ino
    assert run_in(pair.a, "import rt_renamed; print(rt_renamed.answer())").stdout.strip() == "1"


def test_an_in_place_edit_in_env_b_is_seen_everywhere_and_never_stale(pair: Pair) -> None:
    in_a, in_b = _hardlinked_module(pair, "rt_inplace", "def answer():\n    return 1\n")
    shared_ino, shared = pyc_of(in_a).stat().st_ino, pyc_of(in_a).read_bytes()
    # An in-place write changes the one inode every env (and the installer's cache) links:
    # that is what hardlink installs mean, bytecode sharing or not. No env runs stale code:
    # the source's new mtime and size invalidate the old .pyc in every env.
    with open(in_b, "w") as f:
        f.write("def answer():\n    return 'patched'\n")
    assert run_in(pair.b, "import rt_inplace; print(rt_inplace.answer())").stdout.strip() == "patched"
    assert run_in(pair.a, "import rt_inplace; print(rt_inplace.answer())").stdout.strip() == "patched"
    # Each env rewrote its own .pyc by rename; the old shared inode was never written into.
    assert pyc_of(in_b).stat().st_ino != shared_ino and pyc_of(in_a).stat().st_ino != shared_ino
    kept = [p for p in pair.store.rglob("*.pyc") if p.stat().st_ino == shared_ino]
    assert len(kept) == 1 and kept[0].read_bytes() == shared


def test_a_source_only_one_env_has_is_compiled_for_that_env(pair: Pair) -> None:
    private = pair.a.site / "rt_private.py"
    private.write_text("X = 1\n")
    linked_before = pyc_of(pair.a.path / KERNELAPP).stat().st_ino
    compile_prefix(pair.a.python, pair.a.path, pair.store)
    assert pyc_of(private).stat().st_nlink == 1
    assert not [p for p in pair.store.rglob("*.pyc") if p.stat().st_ino == pyc_of(private).stat().st_ino]
    assert pyc_of(pair.a.path / KERNELAPP).stat().st_ino == linked_before


def test_without_a_store_every_file_is_compiled_per_env(pair: Pair, uv_cache: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UV_CACHE_DIR", str(uv_cache))
        env = build_uv(pair.root / "envs" / "solo", None)
    details = env.manifest.details["bytecode"]
    assert details["mode"] == "per-env" and "disabled" in details["reason"]
    assert details["per_env"] > 1000 and details["shared"] == details["compiled"] == 0
    assert pyc_of(env.path / KERNELAPP).stat().st_nlink == 1
    shutil.rmtree(env.path)


def _other_filesystem(near: Path) -> Path | None:
    for candidate in (Path("/dev/shm"), Path("/run/user") / str(os.getuid())):
        if candidate.is_dir() and os.access(candidate, os.W_OK) and candidate.stat().st_dev != near.stat().st_dev:
            return candidate
    return None


def test_a_store_on_another_file_system_falls_back_to_per_env(pair: Pair, uv_cache: Path) -> None:
    other = _other_filesystem(pair.root)
    if other is None:
        pytest.skip("no writable directory on another file system (/dev/shm) to put the store on")
    store = other / f"runtimed-test-store-{os.getpid()}"
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("UV_CACHE_DIR", str(uv_cache))
            env = build_uv(pair.root / "envs" / "elsewhere", store)
        details = env.manifest.details["bytecode"]
        assert details["mode"] == "per-env" and "another file system" in details["reason"]
        assert details["per_env"] > 1000 and details["shared"] == details["compiled"] == 0
        assert pyc_of(env.path / KERNELAPP).stat().st_nlink == 1
        assert not list(store.rglob("*.pyc"))
        assert run_in(env, "import ipykernel.kernelapp").returncode == 0
        shutil.rmtree(env.path)
    finally:
        shutil.rmtree(store, ignore_errors=True)


def test_zz_the_store_is_collected_once_its_envs_are_gone(pair: Pair) -> None:
    """Last in the module: it deletes the shared envs."""
    entries = len(list(pair.store.rglob("*.pyc")))
    # Linked by no env: at most the old .pyc of the module edited in place (both envs rewrote theirs).
    assert collect_store(pair.store).removed <= 1
    shutil.rmtree(pair.a.path)
    # Linked by env a alone: at most the old .pyc of the module env b replaced.
    assert collect_store(pair.store).removed <= 1
    assert len(list(pair.store.rglob("*.pyc"))) >= entries - 2
    shutil.rmtree(pair.b.path)
    result = collect_store(pair.store)
    assert list(pair.store.rglob("*.pyc")) == []
    assert result.freed_bytes > 0
