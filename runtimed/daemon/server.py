"""The Unix-socket server: bytes in, protocol records to the supervisor, bytes out.

Each connection gets its own :class:`~runtimed.protocol.framing.LineDecoder`; a bad line
gets an ``error`` reply and the connection goes on. Each request is looked up in
:data:`HANDLERS` (request type -> the supervisor's handler). Idle connections are closed
after a timeout, and the number of connections is capped, so no client can make
the daemon die or grow without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from attrs import define

from runtimed._version import __version__
from runtimed.daemon.supervisor import Supervisor
from runtimed.protocol.messages import (
    PROTOCOL_VERSION,
    REQUEST_TYPES,
    Envs,
    Error,
    Flush,
    Gc,
    KernelExit,
    LineDecoder,
    Ping,
    Pong,
    ProtocolError,
    Release,
    Reply,
    Request,
    Shutdown,
    ShuttingDown,
    Stats,
    Status,
    Take,
    TakeKernel,
    encode,
)
from runtimed.util.peercred import peer_pid

__all__ = ["HANDLERS", "Peer", "Server", "peer_pid"]

log = logging.getLogger("runtimed.daemon.server")

READ_CHUNK = 65536


@define(frozen=True)
class Peer:
    """Who sent a request: its pid (if the socket tells), and whether it has gone since."""

    pid: int | None
    gone: Callable[[], bool]


Handler = Callable[[Supervisor, Any, Peer], Awaitable[Reply] | Reply]

# Request type -> its handler; the handlers live in the supervisor. Every request in
# messages.REQUESTS has one (tests/daemon/test_server.py checks it).
HANDLERS: dict[type[Request[Any]], Handler] = {
    Ping: lambda _s, _r, _p: Pong(protocol_version=PROTOCOL_VERSION, daemon_version=__version__),
    Take: lambda s, r, p: s.take(r, p.pid, p.gone),
    Release: lambda s, r, p: s.release(r.path, p.pid),
    Status: lambda s, _r, _p: s.status(),
    Stats: lambda s, _r, _p: s.stats(),
    Flush: lambda s, r, _p: s.flush(r.env_type),
    Gc: lambda s, r, _p: s.gc(dry_run=r.dry_run),
    Envs: lambda s, _r, _p: s.envs(),
    TakeKernel: lambda s, r, p: s.take_kernel(r, p.pid, p.gone),
    KernelExit: lambda s, r, _p: s.kernel_exit(r),
    Shutdown: lambda _s, _r, _p: ShuttingDown(),  # the server stops once the reply is sent
}


class Server:
    """Serves the client protocol for a :class:`Supervisor` on a Unix socket."""

    def __init__(
        self,
        supervisor: Supervisor,
        socket_path: Path,
        on_shutdown: Callable[[], Awaitable[None]],
    ) -> None:
        self.supervisor = supervisor
        self.socket_path = socket_path
        self.on_shutdown = on_shutdown
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen on the socket, created 0600 without touching the process umask (the
        workers spawned meanwhile must keep the user's umask): bound, chmod'ed, and only
        then listening, so no client can connect before its mode is set."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.socket_path))
            os.chmod(self.socket_path, 0o600)
            # A deep backlog: a burst of clients connecting at once must not get EAGAIN.
            # (listen() clamps it to net.core.somaxconn; the config caps it well inside an int.)
            backlog = self.supervisor.config.daemon.max_connections
            self._server = await asyncio.start_unix_server(self._serve, sock=sock, backlog=backlog)
        except BaseException:
            sock.close()
            raise

    async def close(self) -> None:
        """Stop accepting and close every connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            if len(self._connections) > self.supervisor.config.daemon.max_connections:
                writer.write(encode(Error(code="busy", message="too many connections")))
                return
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("connection handler failed")
        finally:
            self._connections.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pid = peer_pid(writer.get_extra_info("socket"))
        decoder = LineDecoder(REQUEST_TYPES)
        while True:
            idle = self.supervisor.config.daemon.idle_timeout_s
            try:
                data = await asyncio.wait_for(reader.read(READ_CHUNK), idle)
            except asyncio.TimeoutError:
                writer.write(encode(Error(code="idle_timeout", message=f"no request for {idle:.0f}s")))
                return
            if not data:
                return
            for event in decoder.feed(data):
                reply = await self._dispatch(event, pid, lambda: writer.is_closing() or reader.at_eof())
                writer.write(encode(reply))
                await writer.drain()
                if isinstance(reply, ShuttingDown):
                    asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.on_shutdown()))

    async def _dispatch(self, event: object, pid: int | None, client_gone: Callable[[], bool]) -> Reply:
        if isinstance(event, ProtocolError):
            return Error.about(event)
        handler = HANDLERS.get(type(event))  # type: ignore[arg-type]
        if handler is None:
            return Error(code="unknown_type", message=f"cannot handle {type(event).__name__}")
        try:
            reply = handler(self.supervisor, event, Peer(pid, client_gone))
            return await reply if inspect.isawaitable(reply) else reply
        except Exception as exc:
            # Never the request itself: a take_kernel carries the front end's
            # environment and the kernel's key.
            log.exception("%s request failed", type(event).__name__)
            return Error(code="internal", message=f"{type(exc).__name__}: {exc}")
