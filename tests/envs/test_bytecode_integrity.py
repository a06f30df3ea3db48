"""Damaged bytecode is neither published to the store nor linked from it (issue 17, item 3).

Real venvs (``--without-pip``, a few ms each) share a module of our own, hardlinked
into both from a "package cache" directory as an installer links it.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest

import runtimed.envscripts.pyc_compile as pyc_compile
from runtimed.envs import bytecode_store
from runtimed.envs.bytecode import BytecodeError, compile_pending, compile_prefix, link_from_store
from runtimed.envs.warm import warm_env

TAG = sys.implementation.cache_tag
#: A module whose .pyc is a few hundred KB.
BIG_SOURCE = "".join(f"def f{i}(x):\n    return x + {i} * len('{'s' * 40}')\n\n" for i in range(4000))


def make_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


def site_packages(venv: Path) -> Path:
    return Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))


def install(cache_file: Path, venv: Path) -> Path:
    """Hardlink ``cache_file`` into the venv's site-packages, as uv links from its cache."""
    target = site_packages(venv) / cache_file.name
    os.link(cache_file, target)
    return target


def pyc_of(source: Path) -> Path:
    return source.parent / "__pycache__" / f"{source.stem}.{TAG}.pyc"


def imports(venv: Path, module: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    code = f"import {module}; print({module}.f7(1))"
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, env=clean)


def store_entries(store: Path) -> list[Path]:
    return [p for p in store.rglob("*.pyc") if ".tmp-" not in p.name]


def truncate_to_40(entry: Path) -> None:
    os.truncate(entry, 40)


def cut_the_body(entry: Path) -> None:
    """A valid 16-byte header and half a body, as a short write leaves it."""
    data = entry.read_bytes()
    with open(entry, "r+b") as f:
        f.truncate(16 + (len(data) - 16) // 2)


@pytest.mark.parametrize("damage", [truncate_to_40, cut_the_body])
def test_a_damaged_store_entry_is_replaced_not_linked(tmp_path: Path, damage: Callable[[Path], None]) -> None:
    (tmp_path / "cache").mkdir()
    cached = tmp_path / "cache" / "rt_big.py"
    cached.write_text(BIG_SOURCE)
    store = tmp_path / "bytecode"
    a, b = make_venv(tmp_path / "a"), make_venv(tmp_path / "b")
    in_a, in_b = install(cached, a), install(cached, b)

    assert compile_prefix(a / "bin" / "python", a, store) == []
    [entry] = store_entries(store)
    good_size = entry.stat().st_size
    assert entry.stat().st_ino == pyc_of(in_a).stat().st_ino
    entry.chmod(0o644)  # the damage happens whatever the mode (root, or the owner)
    damage(entry)
    entry.chmod(0o444)
    assert "marshal data too short" in imports(a, "rt_big").stderr  # env a links the damaged inode

    report = compile_pending(link_from_store(b / "bin" / "python", b, store))
    result = imports(b, "rt_big")
    assert (result.returncode, result.stdout, result.stderr) == (0, "281\n", "")
    [fresh] = store_entries(store)
    assert fresh.stat().st_ino == pyc_of(in_b).stat().st_ino != pyc_of(in_a).stat().st_ino
    assert fresh.stat().st_size == good_size and bytecode_store.entry_is_sealed(fresh.stat())
    assert (report.replaced, report.compiled, report.shared, report.not_compiled) == (1, 1, 0, [])


def test_a_published_entry_is_sealed_and_any_write_breaks_the_seal(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    cached = tmp_path / "cache" / "rt_small.py"
    cached.write_text("X = 1\n")
    venv = make_venv(tmp_path / "v")
    install(cached, venv)
    compile_prefix(venv / "bin" / "python", venv, tmp_path / "bytecode")
    [entry] = store_entries(tmp_path / "bytecode")
    assert bytecode_store.entry_is_sealed(entry.stat()) and entry.stat().st_mode & 0o777 == 0o444
    entry.chmod(0o644)
    data = entry.read_bytes()
    with open(entry, "r+b") as f:  # same size, same bytes: only the write itself
        f.write(data)
    assert not bytecode_store.entry_is_sealed(entry.stat())


def test_the_compiler_removes_and_reports_a_short_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """py_compile does not check how much its write wrote: a full disk leaves a short body."""
    bootstrap = importlib.import_module("importlib._bootstrap_external")
    real_write = bootstrap._write_atomic

    def short_write(path: str, data: bytes, mode: int = 0o666) -> None:
        real_write(path, data[: 16 + (len(data) - 16) // 2], mode)

    monkeypatch.setattr(bootstrap, "_write_atomic", short_write)
    source = tmp_path / "rt_big.py"
    source.write_text(BIG_SOURCE)
    pyc = tmp_path / "rt_big.pyc"
    failure = pyc_compile._compile([str(source), str(pyc)])
    assert failure is not None and failure[0] == str(source)
    message = str(failure[1])
    assert "was written short or damaged" in message and "marshal data too short" in message
    assert not pyc.exists()


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


def test_a_full_file_system_publishes_nothing_short_and_says_so(tmp_path: Path) -> None:
    """A real full tmpfs: the .pyc write comes up short; nothing is published, the error names the cause."""
    fs = tmp_path / "fs"
    fs.mkdir()
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", "size=8m", "tmpfs", str(fs)):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        (fs / "cache").mkdir()
        cached = fs / "cache" / "rt_big.py"
        cached.write_text(BIG_SOURCE)
        venv = make_venv(fs / "v")
        source = install(cached, venv)
        store = fs / "bytecode"
        store.mkdir()
        st = os.statvfs(fs)
        with open(fs / "filler", "wb") as f:  # leave ~64 KB: less than the .pyc needs
            f.write(b"\0" * (st.f_bavail * st.f_frsize - 64 * 1024))
        with pytest.raises(BytecodeError, match=r"^no space left on device: 1 \.pyc files could not be written"):
            compile_prefix(venv / "bin" / "python", venv, store)
        assert store_entries(store) == [] and not pyc_of(source).exists()
        (fs / "filler").unlink()
        result = imports(venv, "rt_big")
        assert (result.returncode, result.stdout) == (0, "281\n"), result.stderr
    finally:
        subprocess.run(["umount", "-l", str(fs)], check=True)


def test_a_read_only_store_is_reported_as_such(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    cached = tmp_path / "cache" / "rt_small.py"
    cached.write_text("X = 1\n")
    venv = make_venv(tmp_path / "v")
    install(cached, venv)
    store = tmp_path / "bytecode"
    store.mkdir(mode=0o555)
    try:
        (store / "probe").touch()
    except PermissionError:
        pass
    else:
        pytest.skip("this process ignores permission bits (root with CAP_DAC_OVERRIDE)")
    report = compile_pending(link_from_store(venv / "bin" / "python", venv, store))
    assert report.mode.value == "per-env" and report.per_env == 1
    assert report.reason is not None
    assert report.reason.startswith("cannot publish to the bytecode store: [Errno 13] Permission denied"), report.reason


def test_a_damage_the_seal_misses_fails_one_warm_up_not_the_build(tmp_path: Path) -> None:
    """An entry damaged with its seal intact (bit rot, or a write then utime) is found by loading it."""
    (tmp_path / "cache").mkdir()
    cached = tmp_path / "cache" / "rt_big.py"
    cached.write_text(BIG_SOURCE)
    store = tmp_path / "bytecode"
    a, b = make_venv(tmp_path / "a"), make_venv(tmp_path / "b")
    in_a, in_b = install(cached, a), install(cached, b)
    compile_prefix(a / "bin" / "python", a, store)
    [entry] = store_entries(store)
    entry.chmod(0o644)
    cut_the_body(entry)
    entry.chmod(0o444)
    os.utime(entry, ns=(0, entry.stat().st_size * 10**9))  # the seal of its new size
    assert bytecode_store.entry_is_sealed(entry.stat())

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    report = warm_env(b / "bin" / "python", b, store=store, modules=["rt_big"], env=clean)
    assert (report.replaced, report.shared, report.compiled) == (1, 0, 1)
    [fresh] = store_entries(store)
    assert fresh.stat().st_ino == pyc_of(in_b).stat().st_ino != pyc_of(in_a).stat().st_ino
    assert imports(b, "rt_big").stdout == "281\n"
