"""Messages between the supervisor and a worker over the worker's pipes (sans-IO).

Same NDJSON framing as the client protocol (``runtimed.protocol``), but its own
message set and a larger line limit: a result carries a whole manifest.
"""

from __future__ import annotations

from typing import Any, ClassVar

from attrs import define, field

__all__ = [
    "JOB_TYPES",
    "OP_CREATE",
    "OP_SPEC_HASH",
    "OP_VALIDATE",
    "PIPE_MAX_LINE",
    "WORKER_TYPES",
    "Done",
    "Failed",
    "Job",
    "Progress",
    "Ready",
]

PIPE_MAX_LINE = 16 * 1024 * 1024

OP_CREATE = "create"  # args: env_id, path, config -> result: manifest
OP_SPEC_HASH = "spec_hash"  # args: config -> result: {"spec_hash": ...}
OP_VALIDATE = "validate"  # args: path -> result: {}


@define(frozen=True)
class Job:
    """Supervisor -> worker: do ``op`` with ``args``; answered by Done or Failed."""

    TYPE: ClassVar[str] = "job"
    id: str
    op: str
    args: dict[str, Any] = field(factory=dict)


@define(frozen=True)
class Ready:
    """Worker -> supervisor, once, after the plugin loaded."""

    TYPE: ClassVar[str] = "ready"
    backend: str
    version: str
    available: bool
    reason: str | None = None
    detail: str | None = None


@define(frozen=True)
class Progress:
    TYPE: ClassVar[str] = "progress"
    id: str
    message: str


@define(frozen=True)
class Done:
    TYPE: ClassVar[str] = "done"
    id: str
    result: dict[str, Any] = field(factory=dict)


@define(frozen=True)
class Failed:
    TYPE: ClassVar[str] = "failed"
    id: str
    kind: str
    message: str
    package: str | None = None


JOB_TYPES: dict[str, type] = {Job.TYPE: Job}
WORKER_TYPES: dict[str, type] = {c.TYPE: c for c in (Ready, Progress, Done, Failed)}
