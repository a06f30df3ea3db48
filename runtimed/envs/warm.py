"""Warming a freshly built env: its bytecode, and the warm-up import that proves it works.

Order, for speed without giving up the proof:

1. link every ``.pyc`` the shared store already has into the env (milliseconds);
2. if little is left to compile (a warm store), start the warm-up import at once
   and compile the rest (files only this env has) while it runs; otherwise
   compile first, so the warm-up does not compile the same modules in memory;
3. the warm-up import must succeed before :func:`warm_env` returns: the env is
   pooled only after that. If it fails, every ``.pyc`` linked from the store is
   loaded once: damaged ones (a damage the store's seal cannot see) are replaced
   by fresh ones and the warm-up runs again, so a bad entry fails one build only.

The warm-up runs with ``-B``: it never writes bytecode, so an env's ``.pyc`` files
are exactly the ones compiled or linked here. What happened is written to
``.runtimed/bytecode.json`` (:func:`read_warm_report`) for the manifest's details.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from runtimed.core.phases import BuildPhase
from runtimed.envs.bytecode import (
    BytecodeReport,
    PendingCompile,
    SharingMode,
    compile_pending,
    damaged_pycs,
    link_from_store,
)
from runtimed.envs.envdir import META_DIR
from runtimed.util.files import write_json_atomic
from runtimed.util.output import tail

__all__ = ["OVERLAP_MAX_FILES", "REPORT_FILE", "WarmupFailed", "read_warm_report", "replace_damaged", "warm_env"]

log = logging.getLogger("runtimed.envs.bytecode")

#: Up to this many files left to compile, the warm-up import runs alongside.
OVERLAP_MAX_FILES = 64
#: The bytecode report, under the env's ``.runtimed/``.
REPORT_FILE = "bytecode.json"


class WarmupFailed(Exception):
    """The warm-up import failed: the env cannot start a kernel."""


def warm_env(
    python: Path,
    prefix: Path,
    *,
    store: Path | None,
    modules: Sequence[str],
    env: Mapping[str, str],
    progress: Callable[[str], None] = lambda _message: None,
    phase: Callable[[BuildPhase], None] = lambda _phase: None,
) -> BytecodeReport:
    """Give the env its bytecode (shared where possible) and run the warm-up import.

    Raises :class:`~runtimed.envs.bytecode.BytecodeError` or :class:`WarmupFailed`.
    """
    started = time.monotonic()
    phase(BuildPhase.COMPILING)
    progress("bytecode: linking from the store" if store is not None else "bytecode: compiling")
    pending = link_from_store(python, prefix, store, env)
    linked = time.monotonic()
    overlap = len(pending) <= OVERLAP_MAX_FILES
    warmup_started = compiled = linked
    with tempfile.TemporaryFile() as output:
        warmup = _start_warmup(python, modules, env, output) if overlap else None
        try:
            if pending:
                progress(f"bytecode: compiling {len(pending)} files")
            report = compile_pending(pending, env)
            compiled = time.monotonic()
            phase(BuildPhase.WARMING_UP)  # overlapped: what is left is waiting for the warm-up
            if warmup is None:
                progress("warm-up import")
                warmup_started = compiled
                warmup = _start_warmup(python, modules, env, output)
            try:
                _finish_warmup(warmup, output)
            except WarmupFailed:
                if not _replaced_damaged(pending, env, progress):
                    raise
                output.seek(0)
                output.truncate()
                warmup = _start_warmup(python, modules, env, output)
                _finish_warmup(warmup, output)
        finally:
            if warmup is not None and warmup.poll() is None:
                warmup.kill()
                warmup.wait()
    done = time.monotonic()
    details = report.as_details(prefix)
    details["timings_s"] = {
        "link": round(linked - started, 3),
        "compile": round(compiled - linked, 3),
        "warmup": round(done - warmup_started, 3),
        "overlapped": overlap,
    }
    write_json_atomic(prefix / META_DIR / REPORT_FILE, details)
    log.info(
        "bytecode of %s: %s; %d linked from the store, %d compiled into it, %d per env, %d not compiled (%.2f s)",
        prefix.name,
        report.mode.value,
        report.shared,
        report.compiled,
        report.per_env,
        len(report.not_compiled),
        done - started,
    )
    return report


def _replaced_damaged(pending: PendingCompile, env: Mapping[str, str], progress: Callable[[str], None]) -> bool:
    """After a failed warm-up: whether damaged ``.pyc`` linked from the store were replaced."""
    replaced = replace_damaged(pending, env)
    if replaced:
        log.warning("warm-up import failed; %d damaged .pyc from the bytecode store replaced, retrying", replaced)
        progress(f"bytecode: {replaced} damaged files from the store replaced; warm-up import again")
    return replaced > 0


def replace_damaged(pending: PendingCompile, env: Mapping[str, str] | None = None) -> int:
    """Load every ``.pyc`` linked from the store in the env's python; replace the damaged ones.

    For a damage the store's seal cannot see (the entry's mtime restored, a disk
    error): each is removed from the env and, while it is still the same inode,
    from the store, then compiled and published afresh. Returns how many.
    """
    if not pending.linked:
        return 0
    damaged = damaged_pycs(pending.interpreter.python, [pyc for _src, pyc, _st, _entry in pending.linked], env)
    redo = [job for job in pending.linked if job[1] in damaged]
    for _source, pyc, _st, entry in redo:
        with contextlib.suppress(OSError):
            if os.path.samefile(pyc, entry):
                os.unlink(entry)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pyc)
    pending.linked = [job for job in pending.linked if job[1] not in damaged]
    again = compile_pending(PendingCompile(pending.interpreter, BytecodeReport(SharingMode.SHARED), to_store=redo), env)
    report = pending.report
    report.shared -= len(redo)
    report.replaced += len(redo)
    report.compiled += again.compiled
    report.per_env += again.per_env
    report.not_compiled = sorted({*report.not_compiled, *again.not_compiled})
    return len(redo)


def _start_warmup(
    python: Path, modules: Sequence[str], env: Mapping[str, str], output: IO[bytes]
) -> subprocess.Popen[bytes]:
    # os._exit: an interpreter that imported a kernel's worth of modules spends ~0.2 s
    # tearing them down at exit, which proves nothing (a failed import exits 1 before).
    code = "".join(f"import {m}; " for m in modules) + "import os; os._exit(0)"
    try:
        return subprocess.Popen(
            [os.fspath(python), "-B", "-c", code],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    except OSError as exc:
        raise WarmupFailed(f"warm-up import could not start {python}: {exc}") from exc


def _finish_warmup(proc: subprocess.Popen[bytes], output: IO[bytes]) -> None:
    code = proc.wait()
    if code != 0:
        output.seek(0)
        text = output.read().decode(errors="replace")
        raise WarmupFailed(f"warm-up import failed (exit {code}): {tail(text)}")


def read_warm_report(prefix: Path) -> dict[str, Any] | None:
    """The bytecode report :func:`warm_env` wrote into the env, if any."""
    try:
        data = json.loads((prefix / META_DIR / REPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
