"""Kernel processes on disk: private dirs, connection files, records.

Each kernel the daemon starts gets ``<cache>/kernels/<id>/`` (0700) holding its
connection file (0600), its log and ``record.json``, which says whether it is idle
(owned by the daemon) or handed out (owned by a front end). The record outlives
the daemon: the next start kills idle kernels left by a crash and keeps watching
the owners of handed-out ones.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import secrets
import shutil
import signal
from pathlib import Path
from typing import Any

import attrs
from attrs import define

from runtimed.core.convert import make_converter
from runtimed.envscripts import KERNEL_HOST

__all__ = [
    "HOST_SCRIPT",
    "KernelRecord",
    "KernelState",
    "connection_info",
    "kill_group",
    "make_kernel_dir",
    "new_connection_file",
    "read_connection",
    "read_record",
    "remove_kernel_dir",
    "write_record",
]

HOST_SCRIPT = KERNEL_HOST
RECORD = "record.json"
CONNECTION = "connection.json"

_converter = make_converter(forbid_extra_keys=False)


class KernelState(str, enum.Enum):
    IDLE = "idle"  # pre-started, owned by the daemon
    HANDED_OUT = "handed_out"  # owned by a front end


@define(frozen=True)
class KernelRecord:
    id: str
    backend: str
    env_path: str
    pid: int
    create_time: float
    state: KernelState
    owner_pid: int | None = None
    owner_create_time: float | None = None
    owner_grace_s: float | None = None  # None: the daemon's kernel_owner_grace_s


def write_record(kernel_dir: Path, record: KernelRecord) -> None:
    """Atomic (temp + rename) but not fsynced: it is on the hand-out path, and it only
    has to survive the daemon dying, not the machine (a reboot ends the kernels too)."""
    tmp = kernel_dir / f".{RECORD}.tmp"
    tmp.write_text(json.dumps(_converter.unstructure(record)))
    os.replace(tmp, kernel_dir / RECORD)


def read_record(kernel_dir: Path) -> KernelRecord | None:
    try:
        record: KernelRecord = _converter.structure(json.loads((kernel_dir / RECORD).read_text()), KernelRecord)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    except Exception:  # cattrs structuring errors
        return None
    try:  # the shared converter leaves str-based enums as plain strings
        return attrs.evolve(record, state=KernelState(record.state))
    except ValueError:
        return None


def connection_info(fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """Connection info on 127.0.0.1 with a fresh key and ports chosen by the kernel
    (0), or exactly ``fixed`` (a restart keeps its ports and key; ``key`` as a string)."""
    info: dict[str, Any] = {
        "ip": "127.0.0.1",
        "transport": "tcp",
        "signature_scheme": "hmac-sha256",
        "key": secrets.token_hex(32),
        "kernel_name": "",
        **{f"{c}_port": 0 for c in ("shell", "iopub", "stdin", "hb", "control")},
    }
    if fixed:
        info.update({k: v.decode() if isinstance(v, bytes) else v for k, v in fixed.items()})
    return info


def new_connection_file(kernel_dir: Path, fixed: dict[str, Any] | None = None) -> Path:
    """The kernel dir's connection file (0600) holding :func:`connection_info`."""
    path = kernel_dir / CONNECTION
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(connection_info(fixed), f)
    return path


def read_connection(path: Path) -> dict[str, Any] | None:
    """The connection info once every port is bound (non-zero), else None."""
    try:
        info: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ports = [info.get(f"{c}_port") for c in ("shell", "iopub", "stdin", "hb", "control")]
    return info if all(isinstance(p, int) and p > 0 for p in ports) else None


def make_kernel_dir(root: Path, kernel_id: str) -> Path:
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    path = root / kernel_id
    path.mkdir(mode=0o700)
    return path


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal a kernel's process group (it leads its own session), else the process."""
    try:
        os.killpg(pid, sig)
    except OSError:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def remove_kernel_dir(kernel_dir: Path) -> None:
    shutil.rmtree(kernel_dir, ignore_errors=True)
