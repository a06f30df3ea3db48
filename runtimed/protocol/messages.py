"""The client protocol, sans-IO: message records and their NDJSON framing.

One JSON object per line, UTF-8, tagged by ``"type"``. Nothing here touches a
socket: :class:`LineDecoder` turns bytes into messages (or :class:`ProtocolError`
events), :func:`encode` turns a message into one line of bytes. The daemon and the
client both drive these from their own I/O, the way h11 keeps HTTP apart from it.
The records carried inside messages (envs, status, GC items) live in
:mod:`runtimed.protocol.records`; every name is re-exported here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
from attrs import define, field

from runtimed.core.convert import describe_error, make_converter
from runtimed.protocol.records import (
    DaemonInfo,
    EnvEntry,
    GcItem,
    KernelPoolStatus,
    LaunchedKernel,
    PooledEnv,
    PoolError,
    PoolStatus,
    WorkerStatus,
)
from runtimed.protocol.stats import Stats, StatsReply

__all__ = [
    "MAX_LINE_BYTES",
    "PROTOCOL_VERSION",
    "REPLY_TYPES",
    "REQUEST_TYPES",
    "DaemonInfo",
    "Empty",
    "EnvEntry",
    "EnvList",
    "EnvReply",
    "Envs",
    "Error",
    "Flush",
    "Flushed",
    "Gc",
    "GcItem",
    "GcReport",
    "KernelPoolStatus",
    "KernelReply",
    "LaunchedKernel",
    "LineDecoder",
    "Ping",
    "Pong",
    "PoolError",
    "PoolStatus",
    "PooledEnv",
    "ProtocolError",
    "Release",
    "Released",
    "Reply",
    "Request",
    "Shutdown",
    "ShuttingDown",
    "Stats",
    "StatsReply",
    "Status",
    "StatusReply",
    "Take",
    "TakeKernel",
    "WorkerStatus",
    "decode_line",
    "encode",
    "structure",
    "unstructure",
]

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 64 * 1024


# ---------------------------------------------------------------- requests


@define(frozen=True)
class Ping:
    TYPE: ClassVar[str] = "ping"


@define(frozen=True)
class Take:
    TYPE: ClassVar[str] = "take"
    env_type: str
    wait_s: float | None = None
    lease_pid: int | None = None
    keep: bool = False


@define(frozen=True)
class Release:
    TYPE: ClassVar[str] = "release"
    path: str


@define(frozen=True)
class Status:
    TYPE: ClassVar[str] = "status"


@define(frozen=True)
class Flush:
    TYPE: ClassVar[str] = "flush"
    env_type: str | None = None


@define(frozen=True)
class Shutdown:
    TYPE: ClassVar[str] = "shutdown"


@define(frozen=True)
class Gc:
    """Run a garbage-collection sweep now (``dry_run``: only report)."""

    TYPE: ClassVar[str] = "gc"
    dry_run: bool = False


@define(frozen=True)
class Envs:
    """List every env on disk with its state."""

    TYPE: ClassVar[str] = "envs"


@define(frozen=True)
class TakeKernel:
    """A running kernel in an env of ``env_type``, set up as the front end asked.

    ``env`` replaces the kernel's environment (the env's activation is applied on
    top), ``argv`` are extra kernel arguments, ``owner_pid`` the process whose death
    ends the kernel (after a grace). ``connection`` pins the ports and key (a
    restart); then no pre-started kernel can serve and one is launched on them.
    ``env`` and ``connection`` (the key) are left out of its repr: never logged.
    """

    TYPE: ClassVar[str] = "take_kernel"
    env_type: str
    cwd: str | None = None
    env: dict[str, str] = field(factory=dict, repr=False)
    argv: list[str] = field(factory=list)
    owner_pid: int | None = None
    connection: dict[str, Any] | None = field(default=None, repr=False)
    wait_s: float | None = None
    prestarted: bool = True  # False: never use a pre-started kernel


# ---------------------------------------------------------------- replies


@define(frozen=True)
class Pong:
    TYPE: ClassVar[str] = "pong"
    protocol_version: int
    daemon_version: str


@define(frozen=True)
class EnvReply:
    TYPE: ClassVar[str] = "env"
    env: PooledEnv


@define(frozen=True)
class Empty:
    TYPE: ClassVar[str] = "empty"
    retry_in_s: float | None = None


@define(frozen=True)
class Released:
    TYPE: ClassVar[str] = "released"
    path: str = ""


@define(frozen=True)
class StatusReply:
    TYPE: ClassVar[str] = "status"
    daemon: DaemonInfo
    pools: dict[str, PoolStatus] = field(factory=dict)


@define(frozen=True)
class Flushed:
    TYPE: ClassVar[str] = "flushed"
    removed: int


@define(frozen=True)
class ShuttingDown:
    TYPE: ClassVar[str] = "shutting_down"


@define(frozen=True)
class GcReport:
    TYPE: ClassVar[str] = "gc_report"
    removed: list[GcItem] = field(factory=list)
    freed_bytes: int = 0
    dry_run: bool = False


@define(frozen=True)
class EnvList:
    TYPE: ClassVar[str] = "envs"
    envs: list[EnvEntry] = field(factory=list)


@define(frozen=True)
class KernelReply:
    TYPE: ClassVar[str] = "kernel"
    kernel: LaunchedKernel


@define(frozen=True)
class Error:
    """A reply that says the request failed; ``code`` is machine-readable."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str


Request = Ping | Take | Release | Status | Flush | Shutdown | Gc | Envs | TakeKernel | Stats
Reply = (
    Pong
    | EnvReply
    | Empty
    | Released
    | StatusReply
    | Flushed
    | ShuttingDown
    | GcReport
    | EnvList
    | KernelReply
    | StatsReply
    | Error
)

REQUEST_TYPES: dict[str, type] = {
    c.TYPE: c for c in (Ping, Take, Release, Status, Flush, Shutdown, Gc, Envs, TakeKernel, Stats)
}
# "status" and "stats" name both a request and its reply; the direction decides which.
REPLY_TYPES: dict[str, type] = {
    c.TYPE: c
    for c in (
        Pong,
        EnvReply,
        Empty,
        Released,
        StatusReply,
        Flushed,
        ShuttingDown,
        GcReport,
        EnvList,
        KernelReply,
        StatsReply,
        Error,
    )
}

# Unknown keys are tolerated so a newer peer can add optional fields.
_converter = make_converter(forbid_extra_keys=False)


# ---------------------------------------------------------------- framing


@define(frozen=True)
class ProtocolError:
    """A line that could not be decoded; the peer gets an ``error`` reply with it."""

    TYPE: ClassVar[str] = "protocol_error"

    code: str  # line_too_long | invalid_utf8 | invalid_json | unknown_type | invalid_message
    message: str

    def as_reply(self) -> Error:
        return Error(code=self.code, message=self.message)


def encode(message: Any) -> bytes:
    """One NDJSON line for ``message``. A surrogate-escaped string (non-UTF-8 bytes of a
    path or variable) goes as a ``\\udcXX`` escape: :func:`decode_line` gives it back."""
    body = _converter.unstructure(message)
    payload = {"type": type(message).TYPE, **body}  # type: ignore[union-attr]
    try:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    except UnicodeEncodeError:  # lone surrogates: escape them (and all non-ASCII) instead
        return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


def decode_line(line: bytes, types: Mapping[str, type] = REQUEST_TYPES, max_line: int = MAX_LINE_BYTES) -> Any:
    """Decode one line (without its newline) into one of ``types``, or a :class:`ProtocolError`."""
    if len(line) > max_line:
        return ProtocolError("line_too_long", f"line exceeds {max_line} bytes")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ProtocolError("invalid_utf8", f"line is not valid UTF-8: {exc.reason}")
    try:
        obj = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        return ProtocolError("invalid_json", f"line is not valid JSON: {exc.msg}")
    except RecursionError:
        return ProtocolError("invalid_json", "line is nested too deeply")
    except ValueError as exc:  # an integer past Python's digit limit, a non-finite number
        return ProtocolError("invalid_json", f"line has an unusable number: {exc}"[:200])
    if not isinstance(obj, dict):
        return ProtocolError("invalid_message", "a message must be a JSON object")
    kind = obj.pop("type", None)
    if not isinstance(kind, str):
        return ProtocolError("invalid_message", 'a message needs a string "type"')
    cls = types.get(kind)
    if cls is None:
        known = ", ".join(sorted(types))
        return ProtocolError("unknown_type", f"unknown message type {kind!r} (known: {known})")
    try:
        return _converter.structure(obj, cls)  # type: ignore[no-any-return]
    except Exception as exc:  # cattrs raises several kinds; all mean "bad fields"
        return ProtocolError("invalid_message", f"bad {kind!r} message: {describe_error(exc)}")


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity; JSON does not, and no field wants them.
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} overflows a float")
    return value


@define
class LineDecoder:
    """Incremental NDJSON decoder with a line-length limit.

    ``feed`` returns the events for every complete line seen so far. A line longer
    than the limit yields one ``line_too_long`` error and is skipped up to its
    newline without being buffered, so memory stays bounded whatever the peer sends.
    """

    types: Mapping[str, type] = REQUEST_TYPES
    max_line: int = MAX_LINE_BYTES
    _buffer: bytearray = attrs.field(factory=bytearray, init=False)
    _discarding: bool = attrs.field(default=False, init=False)

    def feed(self, data: bytes) -> list[Any]:
        events: list[Any] = []
        start = 0
        while True:
            newline = data.find(b"\n", start)
            chunk = data[start:] if newline < 0 else data[start:newline]
            if self._discarding:
                if newline >= 0:
                    self._discarding = False
            else:
                self._buffer += chunk
                if len(self._buffer) > self.max_line:
                    self._buffer.clear()
                    self._discarding = newline < 0
                    events.append(ProtocolError("line_too_long", f"line exceeds {self.max_line} bytes"))
                elif newline >= 0:
                    line = bytes(self._buffer).rstrip(b"\r")
                    self._buffer.clear()
                    if line.strip():
                        events.append(decode_line(line, self.types, self.max_line))
            if newline < 0:
                return events
            start = newline + 1

    @property
    def pending(self) -> int:
        """Bytes of an incomplete line held in the buffer."""
        return len(self._buffer)


def unstructure(value: Any) -> Any:
    """Plain JSON-able data for a record (used for ``--json`` output)."""
    return _converter.unstructure(value)


def structure(data: Any, cls: type) -> Any:
    """The record ``cls`` from plain data, with strict type checks."""
    return _converter.structure(data, cls)
