"""Compiling an env's bytecode explicitly, sharing each shared file's ``.pyc`` between envs.

Kernels must not pay for compilation at start, and nothing else does it for us:
rattler writes no ``.pyc`` at all, and PYTHONDONTWRITEBYTECODE may be set. Every
``.py`` under the env's own stdlib and site-packages gets a ``.pyc`` made by the
env's python (library dirs outside the prefix, such as a venv's base interpreter,
are left alone):

* a source hardlinked from a package cache (``st_nlink > 1``) on the store's file
  system gets the store's ``.pyc``, hardlinked (:mod:`runtimed.envs.bytecode_store`);
  when the store lacks it, it is compiled into the env and published;
* any other source (prefix-rewritten, generated, or no store on this file
  system) is compiled for this env alone, as compileall would.

Like conda and pip, a file that does not compile (Python 2 test data, templates
shipped as ``.py``) is reported, not fatal. This module imports nothing from
:mod:`runtimed.backend`: failures are :class:`BytecodeError`, which the caller
classifies.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import attrs
from attrs import define, field

from runtimed.envs.bytecode_store import DamagedEntry, entry_path, link_entry, publish_entry, pyc_header_matches
from runtimed.envscripts import PYC_COMPILE
from runtimed.util.output import tail

__all__ = [
    "BytecodeError",
    "BytecodeReport",
    "Interpreter",
    "PendingCompile",
    "SharingMode",
    "compile_pending",
    "compile_prefix",
    "damaged_pycs",
    "library_dirs",
    "link_from_store",
    "probe_interpreter",
]

log = logging.getLogger("runtimed.envs.bytecode")

_COMPILER = PYC_COMPILE
_PROBE = (
    "import sysconfig, json, sys, importlib.util; p = sysconfig.get_paths();"
    "print(json.dumps({'dirs': sorted({p[k] for k in ('stdlib', 'platstdlib', 'purelib', 'platlib')}),"
    " 'cache_tag': sys.implementation.cache_tag, 'magic': importlib.util.MAGIC_NUMBER.hex()}))"
)


class BytecodeError(Exception):
    """Compilation could not run at all (not: some file did not compile)."""


class SharingMode(str, Enum):
    """How an env got its bytecode."""

    SHARED = "shared"  # shared sources linked from (or published to) the store
    PER_ENV = "per-env"  # everything compiled for this env alone


@define(frozen=True)
class Interpreter:
    """What decides an env's bytecode: its python, cache tag, magic number and library dirs."""

    python: Path
    cache_tag: str
    magic: bytes
    dirs: tuple[str, ...]

    @property
    def store_tag(self) -> str:
        """The store subdirectory for this interpreter's ``.pyc`` format."""
        return f"{self.cache_tag}-{self.magic.hex()}"


@define
class BytecodeReport:
    """What a build did for bytecode; ``as_details()`` goes into the manifest."""

    mode: SharingMode
    reason: str | None = None
    shared: int = 0  # linked from the store, compiled by an earlier build
    compiled: int = 0  # compiled by this build and published to the store
    per_env: int = 0  # compiled for this env only
    present: int = 0  # a valid .pyc was already there (e.g. shipped in the package)
    replaced: int = 0  # store entries found damaged, removed and compiled afresh
    not_compiled: list[str] = field(factory=list)
    store_errors: int = 0  # links from or publications to the store that failed
    store_error: str | None = None  # the first of them

    def store_failed(self, action: str, exc: OSError) -> None:
        """Count a failed link or publication; the first one is kept (and logged once by the caller)."""
        self.store_errors += 1
        if self.store_error is None:
            self.store_error = f"cannot {action} the bytecode store: {exc}"

    def as_details(self, prefix: Path) -> dict[str, object]:
        root = str(prefix) + os.sep
        return {
            "mode": self.mode.value,
            "reason": self.reason,
            "shared": self.shared,
            "compiled": self.compiled,
            "per_env": self.per_env,
            "present": self.present,
            "replaced": self.replaced,
            "store_error": self.store_error,
            "not_compiled": [f.removeprefix(root) for f in self.not_compiled],
        }


@define
class PendingCompile:
    """Sources still to compile after linking from the store."""

    interpreter: Interpreter
    report: BytecodeReport
    to_store: list[tuple[str, str, os.stat_result, str]] = field(factory=list)  # source, pyc, stat, entry
    per_env: list[tuple[str, str]] = field(factory=list)  # source, pyc
    linked: list[tuple[str, str, os.stat_result, str]] = field(factory=list)  # as to_store, linked from the store

    def __len__(self) -> int:
        return len(self.to_store) + len(self.per_env)


def probe_interpreter(python: Path, prefix: Path, env: Mapping[str, str] | None = None) -> Interpreter:
    """Ask ``python`` for its cache tag, magic number and library dirs inside ``prefix`` (none nested).

    Remembered per interpreter binary (the file a venv's python links to, or a conda
    env's python hardlinked from the package cache) and its place in the prefix: the
    next env with the same layout is not asked again (a python start, ~50 ms a build).
    """
    key = _layout_key(python, prefix)
    known = _LAYOUTS.get(key) if key is not None else None
    if known is not None:
        dirs = tuple(os.path.join(prefix, rel) for rel in known.dirs)
        if dirs and all(os.path.isdir(d) for d in dirs):
            return Interpreter(python=python, cache_tag=known.cache_tag, magic=known.magic, dirs=dirs)
    interpreter = _probe(python, prefix, env)
    if key is not None:
        rel = tuple(os.path.relpath(d, os.path.realpath(prefix)) for d in interpreter.dirs)
        # A prefix holding none of the interpreter's dirs (a python linked into a bare dir)
        # says nothing of the next prefix: remembered, it would leave every env uncompiled.
        if rel and not any(r.startswith(os.pardir) for r in rel):
            _LAYOUTS[key] = attrs.evolve(interpreter, dirs=rel)
    return interpreter


#: Probed layouts: (binary's dev, inode, mtime, size, python's path in the prefix) -> dirs relative to the prefix.
_LAYOUTS: dict[tuple[int, int, int, int, str], Interpreter] = {}


def _layout_key(python: Path, prefix: Path) -> tuple[int, int, int, int, str] | None:
    try:
        st = os.stat(python)  # follows the venv's symlink to the real binary
    except OSError:
        return None
    rel = os.path.relpath(os.path.abspath(python), os.path.abspath(prefix))
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size, rel)


def _probe(python: Path, prefix: Path, env: Mapping[str, str] | None) -> Interpreter:
    data = json.loads(_run_python(python, ["-c", _PROBE], env, what="python (sysconfig)"))
    root = os.path.realpath(prefix)
    inside = [d for d in data["dirs"] if _within(d, root) and os.path.isdir(d)]
    # The walk recurses: site-packages inside the stdlib dir would be compiled twice.
    dirs = tuple(d for d in inside if not any(other != d and _within(d, other) for other in inside))
    if not data["cache_tag"]:
        raise BytecodeError(f"{python} has no bytecode cache tag (sys.implementation.cache_tag is None)")
    return Interpreter(python=python, cache_tag=data["cache_tag"], magic=bytes.fromhex(data["magic"]), dirs=dirs)


def library_dirs(python: Path, prefix: Path) -> list[str]:
    """The stdlib and site-packages directories of ``python`` inside ``prefix``, none nested in another."""
    return list(probe_interpreter(python, prefix).dirs)


def _within(path: str, root: str) -> bool:
    return os.path.realpath(path).startswith(os.path.realpath(root) + os.sep)


def link_from_store(
    python: Path, prefix: Path, store: Path | None, env: Mapping[str, str] | None = None
) -> PendingCompile:
    """Give every source that the store has a ``.pyc`` for that ``.pyc``; return the rest to compile."""
    interpreter = probe_interpreter(python, prefix, env)
    report, store_dev = _sharing(prefix, store)
    pending = PendingCompile(interpreter, report)
    made: set[str] = set()
    for source, pyc, st, existing in _scan(interpreter):
        if pyc in existing and pyc_header_matches(pyc, interpreter.magic, st):
            report.present += 1
            continue
        if store is not None and store_dev is not None and st.st_nlink > 1 and st.st_dev == store_dev:
            entry = entry_path(store, interpreter.store_tag, st)
            cache = os.path.dirname(pyc)
            if cache not in made:
                os.makedirs(cache, exist_ok=True)
                made.add(cache)
            try:
                linked = link_entry(entry, pyc, exists=pyc in existing)
            except DamagedEntry as exc:  # removed: compiled and published afresh below
                log.debug("%s", exc)
                report.replaced += 1
                linked = False
            except OSError as exc:  # e.g. too many links: this env compiles its own
                report.store_failed("link from", exc)
                linked = False
            if linked:
                report.shared += 1
                pending.linked.append((source, pyc, st, entry))
            else:
                pending.to_store.append((source, pyc, st, entry))
        else:
            pending.per_env.append((source, pyc))
    return pending


def _sharing(prefix: Path, store: Path | None) -> tuple[BytecodeReport, int | None]:
    """The report to fill, and the store's device if sharing applies to this env."""
    if store is None:
        return BytecodeReport(SharingMode.PER_ENV, "no bytecode store given (sharing disabled)"), None
    try:
        store.mkdir(parents=True, exist_ok=True)
        store_dev = os.stat(store).st_dev
    except OSError as exc:
        return BytecodeReport(SharingMode.PER_ENV, f"the store {store} cannot be used: {exc}"), None
    if os.stat(prefix).st_dev != store_dev:
        return BytecodeReport(SharingMode.PER_ENV, f"the store {store} is on another file system than the env"), None
    return BytecodeReport(SharingMode.SHARED), store_dev


def _scan(interpreter: Interpreter) -> list[tuple[str, str, os.stat_result, frozenset[str]]]:
    """(source, its .pyc path, its stat, the .pyc paths already there) for every ``.py`` file."""
    suffix = f".{interpreter.cache_tag}.pyc"
    found = []
    stack = list(interpreter.dirs)
    while stack:
        directory = stack.pop()
        sources = []
        has_cache = False
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name == "__pycache__":
                        has_cache = True
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.name.endswith(".py") and entry.is_file():
                        sources.append(entry)
        except OSError:  # vanished or unreadable: compileall would skip it too
            continue
        if not sources:
            continue
        cache = os.path.join(directory, "__pycache__")
        existing = frozenset(os.path.join(cache, n) for n in os.listdir(cache)) if has_cache else frozenset()
        for entry in sources:
            try:
                st = entry.stat()
            except OSError:
                continue
            found.append((entry.path, os.path.join(cache, entry.name[:-3] + suffix), st, existing))
    return found


def compile_pending(pending: PendingCompile, env: Mapping[str, str] | None = None) -> BytecodeReport:
    """Compile what :func:`link_from_store` left, publish the shared ones, and report."""
    report = pending.report
    jobs = [[source, pyc] for source, pyc, _st, _entry in pending.to_store] + [list(job) for job in pending.per_env]
    failed = _run_compiler(pending.interpreter.python, jobs, env) if jobs else {}
    report.not_compiled = sorted(failed)
    _raise_if_full(failed)
    magic = pending.interpreter.magic
    for source, pyc, st, entry in pending.to_store:
        if source in failed:
            continue
        published = False
        if pyc_header_matches(pyc, magic, st):  # not if the source changed meanwhile
            try:
                publish_entry(pyc, entry)
                published = True
            except OSError as exc:  # the env keeps its own .pyc
                report.store_failed("publish to", exc)
        if published:
            report.compiled += 1
        else:
            report.per_env += 1
    report.per_env += sum(1 for source, _pyc in pending.per_env if source not in failed)
    _explain(report)
    return report


def _explain(report: BytecodeReport) -> None:
    """Log what went wrong with the store, once; say why nothing was shared."""
    if report.replaced:
        log.warning("bytecode store: %d damaged entries removed and compiled afresh", report.replaced)
    if report.store_error is not None:
        log.warning("bytecode store: %d files compiled per env: %s", report.store_errors, report.store_error)
    if report.mode is SharingMode.SHARED and report.shared + report.compiled == 0 and report.per_env:
        report.mode = SharingMode.PER_ENV
        report.reason = report.store_error or "no source file is hardlinked from a cache on the store's file system"
    if report.mode is SharingMode.PER_ENV:
        log.info("bytecode compiled per env: %s", report.reason)


def damaged_pycs(python: Path, pycs: list[str], env: Mapping[str, str] | None = None) -> set[str]:
    """Those of ``pycs`` whose body ``python`` cannot load (read back and ``marshal.loads``)."""
    args = ["-I", os.fspath(_COMPILER), "--check"]
    return set(json.loads(_run_python(python, args, env, what="bytecode check", stdin=json.dumps(pycs))))


@define(frozen=True)
class CompileFailure:
    """Why the compiler did not compile one source."""

    message: str
    errno: int | None  # set when writing the .pyc failed


def _run_compiler(python: Path, jobs: list[list[str]], env: Mapping[str, str] | None) -> dict[str, CompileFailure]:
    output = _run_python(python, ["-I", os.fspath(_COMPILER)], env, what="bytecode compilation", stdin=json.dumps(jobs))
    return {source: CompileFailure(message, code) for source, message, code in json.loads(output)}


def _raise_if_full(failed: Mapping[str, CompileFailure]) -> None:
    """A full file system fails the build, saying so, rather than pool an env without bytecode."""
    full = [f.message for f in failed.values() if f.errno in (errno.ENOSPC, errno.EDQUOT)]
    if full:
        raise BytecodeError(f"no space left on device: {len(full)} .pyc files could not be written ({full[0]})")


def _run_python(
    python: Path, args: list[str], env: Mapping[str, str] | None, *, what: str, stdin: str | None = None
) -> str:
    """``python ARGS`` (fed ``stdin``); its stdout. Raises :class:`BytecodeError` if it cannot run or fails."""
    feed: dict[str, Any] = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    try:
        proc = subprocess.run(
            [os.fspath(python), *args],
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            check=False,
            **feed,
        )
    except OSError as exc:
        raise BytecodeError(f"cannot run {python}: {exc}") from exc
    if proc.returncode != 0:
        raise BytecodeError(f"{what} failed (exit {proc.returncode}): {tail(proc.stderr or proc.stdout)}")
    return str(proc.stdout)


def compile_prefix(python: Path, prefix: Path, store: Path | None = None) -> list[str]:
    """Give every ``.py`` in the prefix's library dirs a ``.pyc``; return the files that do not compile.

    With a ``store``, shared sources get the store's ``.pyc`` (see the module docstring).
    Raises :class:`BytecodeError` if compilation cannot run at all.
    """
    return compile_pending(link_from_store(python, prefix, store)).not_compiled
