"""NDJSON framing, sans-IO, shared by the client protocol and the worker pipes.

One JSON object per line, UTF-8, tagged by ``"type"``. Nothing here touches a
socket: :class:`LineDecoder` turns bytes into messages of a given registry (or
:class:`ProtocolError` events), :func:`encode` turns a message into one line of
bytes. The daemon, the client and the workers drive these from their own I/O, the
way h11 keeps HTTP apart from it.

The kinds of client message are here too: a :class:`Request` names the replies
that answer it in its type parameter (``Take(Request[EnvReply | Empty])``), as a
worker :class:`~runtimed.protocol.jobs.Operation` names its result. The messages
themselves, and their registry, are in :mod:`runtimed.protocol.messages`.
"""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

import attrs
from attrs import define

from runtimed.core.convert import describe_error, make_converter

__all__ = [
    "MAX_LINE_BYTES",
    "LineDecoder",
    "Message",
    "ProtocolError",
    "Reply",
    "Request",
    "decode_line",
    "encode",
    "registry",
    "structure",
    "unstructure",
]

MAX_LINE_BYTES = 64 * 1024

R = TypeVar("R")


# ---------------------------------------------------------------- kinds of message


class Message:
    """A record sent on the wire; ``TYPE`` is its tag."""

    __slots__ = ()
    TYPE: ClassVar[str]


class Reply(Message):
    """Daemon -> client."""

    __slots__ = ()


class Request(Message, Generic[R]):
    """Client -> daemon, answered by one of ``R`` (an ``error`` reply is always possible too).

    ``REPLIES`` holds the classes of ``R``, read from the type parameter: written once.
    """

    __slots__ = ()
    REPLIES: ClassVar[tuple[type[Reply], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in cls.__dict__.get("__orig_bases__", ()):
            if typing.get_origin(base) is Request:
                (replies,) = typing.get_args(base)
                cls.REPLIES = typing.get_args(replies) or (replies,)


def registry(classes: typing.Iterable[type[Message]]) -> dict[str, type]:
    """Tag -> class for one direction of a protocol; two classes with one tag are a bug."""
    table: dict[str, type] = {}
    for cls in classes:
        if table.setdefault(cls.TYPE, cls) is not cls:
            raise TypeError(f"{cls.__name__} and {table[cls.TYPE].__name__} share the tag {cls.TYPE!r}")
    return table


# ---------------------------------------------------------------- encoding and decoding

# Unknown keys are tolerated so a newer peer can add optional fields.
_converter = make_converter(forbid_extra_keys=False)


@define(frozen=True)
class ProtocolError:
    """A line that could not be decoded; the peer gets an ``error`` reply with it."""

    TYPE: ClassVar[str] = "protocol_error"

    code: str  # line_too_long | invalid_utf8 | invalid_json | unknown_type | invalid_message
    message: str


def encode(message: Any) -> bytes:
    """One NDJSON line for ``message``. A surrogate-escaped string (non-UTF-8 bytes of a
    path or variable) goes as a ``\\udcXX`` escape: :func:`decode_line` gives it back."""
    body = _converter.unstructure(message)
    payload = {"type": type(message).TYPE, **body}
    try:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    except UnicodeEncodeError:  # lone surrogates: escape them (and all non-ASCII) instead
        return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


def decode_line(line: bytes, types: Mapping[str, type], max_line: int = MAX_LINE_BYTES) -> Any:
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
        return _converter.structure(obj, cls)
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
    """Incremental NDJSON decoder of the messages in ``types``, with a line-length limit.

    ``feed`` returns the events for every complete line seen so far. A line longer
    than the limit yields one ``line_too_long`` error and is skipped up to its
    newline without being buffered, so memory stays bounded whatever the peer sends.
    """

    types: Mapping[str, type]
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
