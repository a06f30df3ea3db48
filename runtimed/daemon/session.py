"""The daemon's session: why a take's lease needs no fsync, and exactly-once still holds.

A take writes the env's lease (temp file + atomic rename) *without* an fsync. If the
daemon dies (``kill -9``, a crash), the lease is in the page cache and the next
daemon reads it: nothing is lost. Only an OS crash or power loss can lose it, and
then the env would look pooled again though a client used it. The session file
closes that hole:

* At start, before any env can be handed out, the daemon writes ``session.jsonl``
  durably (fsync): the boot id (``/proc/sys/kernel/random/boot_id``) and every env it
  could hand out or whose lease it trusts unsynced (complete envs on disk, leased or
  not; kept ones excepted).
* Each env built later is appended (with an fsync, off the take path: once per
  build) *before* it enters the pool.
* At a clean shutdown the leases written since the start are synced, then
  ``{"end": "clean"}`` is appended and synced.

The next daemon reads the file. A clean end, or an unclean one under the **same**
boot (the daemon died, the OS did not: the page cache kept every lease): trust what
is on disk. An unclean end under **another** boot (or where the boot id cannot be
read): every env the session named that has no lease on disk now may have been
handed out with its lease lost, so it is deleted, never pooled. That costs at most
a rebuild of the pool after an OS crash; envs handed out then are deleted anyway,
since their holders died with the OS.

``keep`` leases are still fsynced at take: a kept env belongs to its client and
must survive an OS crash, not be deleted as a suspect.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from attrs import define

from runtimed.envs.envdir import META_DIR, Lease, write_lease
from runtimed.util.files import fsync_path, now_iso, write_text_atomic

__all__ = ["BOOT_ID_FILE_ENV", "PreviousSession", "Session", "boot_id", "read_session", "session_path"]

log = logging.getLogger("runtimed.daemon.supervisor")

#: Where the boot id is read from; tests point it at a file of their own to fake a reboot.
BOOT_ID_FILE_ENV = "RUNTIMED_BOOT_ID_FILE"
_BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"
_CLEAN = {"end": "clean"}


def session_path(cache_dir: Path) -> Path:
    return cache_dir / "session.jsonl"


def boot_id() -> str | None:
    """This boot's id (Linux), or None where it cannot be read (then any unclean end
    is taken for an OS crash)."""
    try:
        with open(os.environ.get(BOOT_ID_FILE_ENV) or _BOOT_ID_FILE, encoding="ascii") as f:
            return f.read().strip() or None
    except (OSError, ValueError):
        return None


@define(frozen=True)
class PreviousSession:
    """What the last daemon's session file says."""

    boot_id: str | None
    clean: bool
    envs: frozenset[str]  # env dir names it could hand out or whose lease it did not sync

    def suspects(self, boot: str | None) -> frozenset[str]:
        """The envs whose lease an OS crash may have lost: none after a clean end or a
        daemon crash under this same boot; all it named after another boot."""
        if self.clean or (boot is not None and self.boot_id == boot):
            return frozenset()
        return self.envs


def read_session(path: Path) -> PreviousSession | None:
    """The session the file records, or None if there is none (first start, or a
    runtimed that fsynced every lease). A torn last line (an append cut short) is
    ignored: what it was appending had not entered the pool."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError):
        return None
    records = []
    for line in lines:
        with contextlib.suppress(ValueError):
            records.append(json.loads(line))
    if not records or not isinstance(records[0], dict) or "envs" not in records[0]:
        log.warning("%s has no readable header; ignoring it", path)
        return None
    header = records[0]
    envs = {str(name) for name in header.get("envs", [])}
    envs |= {str(r["pooled"]) for r in records[1:] if isinstance(r, dict) and "pooled" in r}
    clean = records[-1] == _CLEAN
    return PreviousSession(boot_id=header.get("boot_id"), clean=clean, envs=frozenset(envs))


class Session:
    """This daemon's session file, and the leases it wrote without syncing."""

    def __init__(self, path: Path, envs_dir: Path) -> None:
        self.path = path
        self.envs_dir = envs_dir
        self._file: IO[str] | None = None
        self._unsynced: set[Path] = set()
        self._lock = threading.Lock()  # builds finishing together append from threads

    def suspects(self) -> frozenset[str]:
        """The envs the last daemon may have handed out with a lease an OS crash lost
        (read before :meth:`begin` replaces its file)."""
        previous = read_session(self.path)
        return frozenset() if previous is None else previous.suspects(boot_id())

    def begin(self, envs: Iterable[str]) -> None:
        """Durably start the session (blocking), naming ``envs``: those it may hand out
        or whose lease it trusts unsynced. The envs dir is synced first, so the
        deletions made while recovering cannot come back after an OS crash."""
        fsync_path(self.envs_dir)
        header = {"boot_id": boot_id(), "pid": os.getpid(), "started_at": now_iso(), "envs": sorted(envs)}
        write_text_atomic(self.path, json.dumps(header) + "\n")
        fsync_path(self.path.parent)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - open for the session

    def pooled(self, env: Path) -> None:
        """Durably record that ``env`` may be handed out (blocking: an fsync); call it
        before the env enters the pool."""
        if self._file is None:
            raise OSError(f"the session in {self.path} has not begun")
        self._append({"pooled": env.name})

    def write_lease(self, env: Path, lease: Lease) -> None:
        """Lease ``env``: without an fsync (remembered, synced at a clean end), except a
        ``keep`` lease, which must outlive an OS crash."""
        write_lease(env, lease, sync=lease.keep)
        if not lease.keep:
            self._unsynced.add(env)

    def end_clean(self) -> None:
        """Sync every lease written unsynced, then mark the session clean (blocking).
        If that fails, the next start takes this end for a crash (logged)."""
        if self._file is None:
            return
        try:
            self._sync_and_close()
        except OSError as exc:
            log.error("cannot sync the leases at shutdown (%s): the next start takes it for a crash", exc)

    def _sync_and_close(self) -> None:
        assert self._file is not None
        for env in self._unsynced:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                fsync_path(env / META_DIR / "lease.json")
                fsync_path(env / META_DIR)
        fsync_path(self.envs_dir)  # envs moved out (released, deleted) stay out
        self._unsynced.clear()
        self._append(_CLEAN)
        self._file.close()
        self._file = None

    def _append(self, record: dict[str, str]) -> None:
        with self._lock:
            assert self._file is not None
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
