"""The socket server against real clients: bad input never hurts other clients; its dispatch table."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runtimed.daemon.server import HANDLERS, Server
from runtimed.protocol.messages import (
    MAX_LINE_BYTES,
    REQUESTS,
    DaemonInfo,
    EnvList,
    EnvReply,
    Envs,
    Error,
    Flush,
    Flushed,
    Gc,
    GcReport,
    KernelExit,
    KernelExitReply,
    KernelReply,
    LaunchedKernel,
    Ping,
    PooledEnv,
    ProtocolError,
    Release,
    Released,
    Reply,
    Request,
    Shutdown,
    Stats,
    StatsReply,
    Status,
    StatusReply,
    Take,
    TakeKernel,
)
from tests.support.daemon import DaemonProcess, raw_connect

NO_POOLS = "[backends.uv]\npool_size = 0\n"
CODES = {"line_too_long", "invalid_utf8", "invalid_json", "unknown_type", "invalid_message"}


def _reply(s: socket.socket, buffer: bytearray) -> dict:  # type: ignore[type-arg]
    while b"\n" not in buffer:
        chunk = s.recv(65536)
        assert chunk, "daemon closed the connection"
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return json.loads(line)  # type: ignore[no-any-return]


def test_malformed_lines_get_errors_and_others_are_served(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=NO_POOLS).start()
    bad = raw_connect(daemon.socket)
    good = raw_connect(daemon.socket)
    bad_buf, good_buf = bytearray(), bytearray()
    cases = [
        (b"this is not json\n", "invalid_json"),
        (b"\xff\xfe\xfd\n", "invalid_utf8"),
        (b'{"type": "nope"}\n', "unknown_type"),
        (b'{"type": "take", "env_type": 3}\n', "invalid_message"),
        (b"x" * (MAX_LINE_BYTES + 10) + b"\n", "line_too_long"),
    ]
    for payload, code in cases:
        bad.sendall(payload)
        reply = _reply(bad, bad_buf)
        assert reply["type"] == "error" and reply["code"] == code, reply
        # The other client is served in between, and so is the bad one afterwards.
        good.sendall(b'{"type":"ping"}\n')
        assert _reply(good, good_buf)["type"] == "pong"
    bad.sendall(b'{"type":"ping"}\n{"type":"status"}\n')
    assert _reply(bad, bad_buf)["type"] == "pong"
    assert _reply(bad, bad_buf)["type"] == "status"
    # Half a line, then a disconnect: nothing breaks.
    bad.sendall(b'{"type":"pi')
    bad.close()
    good.sendall(b'{"type":"ping"}\n')
    assert _reply(good, good_buf)["type"] == "pong"
    good.close()


def test_many_requests_on_one_connection(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=NO_POOLS).start()
    s = raw_connect(daemon.socket)
    s.sendall(b'{"type":"ping"}\n' * 200)
    buf = bytearray()
    assert all(_reply(s, buf)["type"] == "pong" for _ in range(200))
    s.close()


def test_unknown_env_type_is_an_error(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=NO_POOLS).start()
    s = raw_connect(daemon.socket)
    s.sendall(b'{"type":"take","env_type":"../../etc"}\n')
    reply = _reply(s, bytearray())
    assert reply["type"] == "error" and reply["code"] == "unknown_env_type"
    s.close()


def test_socket_is_private(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=NO_POOLS).start()
    assert stat.S_IMODE(daemon.socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(daemon.socket.parent.stat().st_mode) == 0o700


def test_hostile_json_gets_a_reply_and_the_connection_stays_usable(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=NO_POOLS).start()
    s = raw_connect(daemon.socket)
    buf = bytearray()
    payloads = [
        b'{"type":"ping","x":' + b"[" * 3000 + b"]" * 3000 + b"}",  # RecursionError in json
        b'{"type":"take","env_type":"uv","wait_s":' + b"9" * 5000 + b"}",  # int digit limit
        b'{"type":"take","env_type":"uv","wait_s":NaN}',
        b'{"type":"take","env_type":"uv","wait_s":1e999}',
    ]
    for payload in payloads:
        assert len(payload) < MAX_LINE_BYTES
        s.sendall(payload + b"\n")
        reply = _reply(s, buf)
        assert reply["type"] == "error" and reply["code"] == "invalid_json", reply
        s.sendall(b'{"type":"ping"}\n')  # the same connection still answers
        assert _reply(s, buf)["type"] == "pong"
    s.close()


def test_fuzzed_lines_over_a_real_socket(daemon_factory: type[DaemonProcess]) -> None:
    """Random, deeply nested and huge-number lines: each gets a reply (or, for an
    empty line, none) and a ping right after it on the same connection is answered."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    daemon = daemon_factory(config=NO_POOLS).start()
    s = raw_connect(daemon.socket)
    buf = bytearray()
    lines = st.one_of(
        st.binary(max_size=4096).map(lambda b: b.replace(b"\n", b"")),
        st.integers(0, 30000).map(lambda d: (b"[" * d + b"]" * d)[: MAX_LINE_BYTES - 1]),
        st.integers(1, 30000).map(lambda n: b'{"type":"ping","n":-' + b"1" * n + b"}"),
    )

    @settings(max_examples=40, deadline=None)
    @given(line=lines)
    def check(line: bytes) -> None:
        s.sendall(line + b'\n{"type":"ping"}\n')
        if line.rstrip(b"\r").strip():  # the daemon skips blank lines; every other line gets one reply
            reply = _reply(s, buf)
            assert reply["type"] == "pong" or reply["code"] in CODES, reply
        assert _reply(s, buf)["type"] == "pong"

    check()
    s.close()


# ---------------------------------------------------------------- the dispatch table (pure, no daemon)

ENV = PooledEnv(env_type="uv", venv_path="/e", python_path="/e/bin/python", id="abc")
DAEMON = DaemonInfo(pid=1, version="v", protocol_version=1, started_at="t", socket="/s", cache_dir="/c")
KERNEL = LaunchedKernel(id="k", pid=2, create_time=1.0, connection={}, env=ENV, prestarted=True)


class FakeSupervisor:
    """Answers each handler with a fixed reply and records which one was called, with what."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def _called(self, name: str, *args: object) -> None:
        self.calls.append((name, args))

    async def take(self, request: Take, pid: int | None, gone: Callable[[], bool]) -> EnvReply:
        self._called("take", request, pid)
        return EnvReply(env=ENV)

    async def release(self, path: str, pid: int | None) -> Released:
        self._called("release", path, pid)
        return Released(path=path)

    def status(self) -> StatusReply:
        self._called("status")
        return StatusReply(daemon=DAEMON)

    async def stats(self) -> StatsReply:
        self._called("stats")
        return StatsReply(since="t", file="/f")

    async def flush(self, env_type: str | None) -> Flushed:
        self._called("flush", env_type)
        return Flushed(removed=0)

    async def gc(self, dry_run: bool = False) -> GcReport:
        self._called("gc", dry_run)
        return GcReport(dry_run=dry_run)

    async def envs(self) -> EnvList:
        self._called("envs")
        return EnvList()

    async def take_kernel(self, request: TakeKernel, pid: int | None, gone: Callable[[], bool]) -> KernelReply:
        self._called("take_kernel", request, pid)
        return KernelReply(kernel=KERNEL)

    async def kernel_exit(self, request: KernelExit) -> KernelExitReply:
        self._called("kernel_exit", request.kernel_id)
        return KernelExitReply(returncode=-15)


SAMPLES: dict[type, Request[Any]] = {
    type(r): r
    for r in (
        Ping(),
        Take(env_type="uv"),
        Release(path="/e"),
        Status(),
        Stats(),
        Flush(env_type="uv"),
        Gc(dry_run=True),
        Envs(),
        TakeKernel(env_type="uv"),
        KernelExit(kernel_id="k"),
        Shutdown(),
    )
}


def _dispatch(supervisor: object, event: object, pid: int | None = 42) -> Reply:
    async def on_shutdown() -> None:
        return None

    server = Server(supervisor, Path("unused.sock"), on_shutdown)  # type: ignore[arg-type]
    return asyncio.run(server._dispatch(event, pid, lambda: False))


def test_every_request_type_has_a_handler() -> None:
    """A request added to messages.REQUESTS without an entry in the server's table fails here."""
    assert set(HANDLERS) == set(REQUESTS)
    assert set(SAMPLES) == set(REQUESTS)


@pytest.mark.parametrize("request_type", REQUESTS, ids=lambda c: c.TYPE)
def test_each_handler_answers_with_a_reply_its_request_names(request_type: type[Request[Any]]) -> None:
    supervisor = FakeSupervisor()
    reply = _dispatch(supervisor, SAMPLES[request_type])
    assert isinstance(reply, request_type.REPLIES), reply


def test_handlers_pass_the_request_and_the_peer() -> None:
    supervisor = FakeSupervisor()
    for request in (Take(env_type="uv"), Release(path="/e"), Flush(env_type="uv"), Gc(dry_run=True)):
        _dispatch(supervisor, request)
    kernel = TakeKernel(env_type="uv")
    _dispatch(supervisor, kernel, pid=7)
    assert supervisor.calls == [
        ("take", (Take(env_type="uv"), 42)),
        ("release", ("/e", 42)),
        ("flush", ("uv",)),
        ("gc", (True,)),
        ("take_kernel", (kernel, 7)),
    ]


def test_an_unknown_or_undecodable_event_gets_an_error_reply() -> None:
    assert _dispatch(FakeSupervisor(), object()) == Error(code="unknown_type", message="cannot handle object")
    problem = ProtocolError("invalid_json", "line is not valid JSON: x")
    assert _dispatch(FakeSupervisor(), problem) == Error(code="invalid_json", message="line is not valid JSON: x")
