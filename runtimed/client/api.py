"""The Python client: talk to the daemon over its socket (blocking, no asyncio needed).

``try_get_pooled_env`` is the notebook's daemon-first path and never raises;
``take_env`` falls back to building an env in-process, through the same backend
plugin, when no daemon answers.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

from runtimed.protocol.messages import (
    ALWAYS_POSSIBLE,
    REPLY_TYPES,
    EnvEntry,
    EnvReply,
    Envs,
    Error,
    Flush,
    Gc,
    GcReport,
    KernelExit,
    KernelReply,
    LaunchedKernel,
    LineDecoder,
    PackageOptions,
    Ping,
    Pong,
    PooledEnv,
    ProtocolError,
    Release,
    Request,
    Shutdown,
    Stats,
    StatsReply,
    Status,
    StatusReply,
    Take,
    TakeKernel,
    encode,
)
from runtimed.util.peercred import peer_uid

__all__ = [
    "Client",
    "DaemonAbsent",
    "DaemonError",
    "DaemonNotResponding",
    "DaemonNotRunning",
    "DaemonUntrusted",
    "take_env",
    "try_get_pooled_env",
]

CONNECT_TIMEOUT_S = 2.0

R = TypeVar("R")


class DaemonNotRunning(ConnectionError):
    """No daemon answers on the socket."""


class DaemonAbsent(DaemonNotRunning):
    """Nothing listens on the socket: no socket file, or a stale one (connection refused).

    The only case in which a client may start a daemon (:mod:`runtimed.client.autostart`):
    a daemon that does not answer or that is not ours is never replaced.
    """


class DaemonNotResponding(DaemonNotRunning):
    """Something accepts connections on the socket but does not answer (e.g. a stopped daemon)."""


class DaemonUntrusted(DaemonNotRunning):
    """The socket is served by a process of another user: never talk to it."""


#: How long a take with extra packages may wait for their install (a build's timeout).
INSTALL_TIMEOUT_S = 900.0


class DaemonError(RuntimeError):
    """The daemon answered with an ``error`` reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Client:
    """A connection to the daemon. Use as a context manager; one request at a time.

    >>> with Client() as c:                     # doctest: +SKIP
    ...     env = c.take("uv")
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str] | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        from runtimed.util.paths import Paths

        self.socket_path = Path(socket_path) if socket_path else Paths.resolve(cache_dir=cache_dir).socket
        self.timeout = timeout
        self.install_timeout_s = INSTALL_TIMEOUT_S  # a take with packages may install them
        self._sock: socket.socket | None = None
        self._decoder = LineDecoder(types=REPLY_TYPES, max_line=16 * 1024 * 1024)
        self._pending: list[Any] = []
        self._sock_timeout = timeout

    # ------------------------------------------------------------ connection

    def connect(self) -> Client:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(os.fspath(self.socket_path))
        except (TimeoutError, BlockingIOError) as exc:  # the backlog is full: nobody accepts
            sock.close()
            raise DaemonNotResponding(f"runtimed at {self.socket_path} does not accept connections ({exc})") from exc
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise DaemonAbsent(f"no runtimed daemon at {self.socket_path} ({exc})") from exc
        except OSError as exc:
            sock.close()
            raise DaemonNotRunning(f"no runtimed daemon at {self.socket_path} ({exc})") from exc
        # Only a server running as our own uid is trusted: another user could have
        # planted a socket at this path (e.g. in a shared /tmp).
        uid = peer_uid(sock)
        if uid != os.geteuid():
            sock.close()
            who = "an unknown user" if uid is None else f"uid {uid}"
            raise DaemonUntrusted(
                f"refusing the socket {self.socket_path}: it is served by {who}, not by you (uid {os.geteuid()})"
            )
        self._sock = sock
        return self

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def __enter__(self) -> Client:
        return self.connect() if self._sock is None else self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.close()

    def request(self, message: Request[R], *, timeout: float | None = None) -> R:
        """Send one request and return its reply, one of the types the request names.

        An ``error`` reply raises :class:`DaemonError`, and so does a reply of a type
        the request does not name (code ``unexpected_reply``).
        """
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        self._sock_timeout = timeout if timeout is not None else max(self.timeout, 10.0)
        self._sock.settimeout(self._sock_timeout)
        try:
            self._sock.sendall(encode(message))
            reply = self._read_reply()
        except TimeoutError as exc:
            self.close()
            raise DaemonNotResponding(
                f"runtimed at {self.socket_path} accepted the connection but did not answer within "
                f"{self._sock_timeout:.0f}s"
            ) from exc
        except (OSError, EOFError) as exc:
            self.close()
            raise DaemonNotRunning(f"lost connection to runtimed at {self.socket_path}: {exc}") from exc
        return _expected(message, reply)

    def _read_reply(self) -> Any:
        assert self._sock is not None
        while not self._pending:
            data = self._sock.recv(65536)
            if not data:
                raise EOFError("daemon closed the connection")
            self._pending.extend(self._decoder.feed(data))
        reply = self._pending.pop(0)
        if isinstance(reply, ProtocolError):
            raise DaemonError(reply.code, f"bad reply from daemon: {reply.message}")
        return reply

    # ------------------------------------------------------------ requests

    def ping(self, *, timeout: float | None = None) -> Pong:
        """A round trip; :class:`DaemonNotResponding` if no answer within ``timeout``."""
        return self.request(Ping(), timeout=timeout)

    def take(
        self,
        env_type: str,
        *,
        wait_s: float | None = None,
        lease_pid: int | None = None,
        keep: bool = False,
        packages: Sequence[str] = (),
        channels: Sequence[str] = (),
        options: PackageOptions | None = None,
    ) -> PooledEnv | None:
        """An env from the pool, or None if it is empty (after waiting up to ``wait_s``).

        With ``packages`` (PEP 508 requirements; ``channels`` for conda) the env also has
        them: from a warm set, or installed now (waiting up to ``install_timeout_s``). A
        failed install raises :class:`DaemonError` with its classified ``code``
        (``invalid_package``, ``network``, ...). ``options`` say how they are
        installed (``requires_python``, uv's ``exclude_newer``)."""
        timeout = (wait_s or 0) + max(self.timeout, 10.0)
        if packages or channels:
            timeout += self.install_timeout_s
        request = Take(
            env_type=env_type, wait_s=wait_s, lease_pid=lease_pid, keep=keep, packages=list(packages),
            channels=list(channels), options=options or PackageOptions(),
        )  # fmt: skip
        reply = self.request(request, timeout=timeout)
        return reply.env if isinstance(reply, EnvReply) else None

    def take_kernel(self, request: TakeKernel, *, timeout: float = 120.0) -> LaunchedKernel | None:
        """A running kernel set up as ``request`` asks (see :class:`TakeKernel`), or
        None when the backend has neither a pre-started kernel nor a pooled env."""
        reply = self.request(request, timeout=(request.wait_s or 0) + timeout)
        return reply.kernel if isinstance(reply, KernelReply) else None

    def kernel_exit(self, kernel_id: str, *, wait_s: float = 0.0) -> int | None:
        """A handed-out kernel's exit status (-N: killed by signal N), waiting up to
        ``wait_s`` for it to end; None while it runs or if the daemon does not know."""
        return self.request(KernelExit(kernel_id=kernel_id, wait_s=wait_s), timeout=wait_s + 10.0).returncode

    def release(self, path: str | os.PathLike[str]) -> None:
        """Give an env back; the daemon deletes it."""
        self.request(Release(path=os.fspath(path)))

    def status(self) -> StatusReply:
        return self.request(Status())

    def stats(self) -> StatsReply:
        """The daemon's usage stats (see ``runtimed stats``)."""
        return self.request(Stats())

    def flush(self, env_type: str | None = None) -> int:
        return self.request(Flush(env_type=env_type)).removed

    def shutdown(self) -> None:
        self.request(Shutdown())

    def gc(self, *, dry_run: bool = False) -> GcReport:
        """Run a garbage-collection sweep now (or only report what it would delete)."""
        return self.request(Gc(dry_run=dry_run), timeout=600)

    def envs(self) -> list[EnvEntry]:
        """Every env on disk with its state, size and age."""
        return self.request(Envs(), timeout=600).envs


def _expected(request: Request[R], reply: Any) -> R:
    """``reply`` if it is one that ``request`` names; an ``error`` reply, or any other, raises DaemonError."""
    if isinstance(reply, Error):
        raise DaemonError(reply.code, reply.message)
    if not isinstance(reply, type(request).REPLIES):
        expected = " or ".join(cls.TYPE for cls in (*type(request).REPLIES, *ALWAYS_POSSIBLE))
        raise DaemonError(
            "unexpected_reply", f"a {request.TYPE!r} request got a {reply.TYPE!r} reply (expected {expected})"
        )
    return cast(R, reply)


def try_get_pooled_env(
    env_type: str = "uv", *, wait_s: float | None = None, socket_path: str | os.PathLike[str] | None = None
) -> PooledEnv | None:
    """An env from the daemon's pool, or None: never raises, whatever the daemon's state."""
    try:
        with Client(socket_path) as client:
            return client.take(env_type, wait_s=wait_s)
    except Exception:
        return None


def take_env(
    env_type: str = "uv",
    *,
    fallback: bool = True,
    wait_s: float | None = 30.0,
    socket_path: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> PooledEnv:
    """An env from the daemon; if no daemon answers (or its pool stays empty) and
    ``fallback`` is true, build one in-process with the same backend plugin.

    An env built in-process belongs to the caller (it is marked ``keep``).
    """
    try:
        with Client(socket_path, cache_dir=cache_dir) as client:
            env = client.take(env_type, wait_s=wait_s)
        if env is not None:
            return env
        reason = f"the {env_type} pool stayed empty"
    except DaemonNotRunning as exc:
        reason = str(exc)
    if not fallback:
        raise DaemonNotRunning(reason)
    return build_in_process(env_type, cache_dir=cache_dir)


def build_in_process(env_type: str, *, cache_dir: str | os.PathLike[str] | None = None) -> PooledEnv:
    """Build one env now, in this process, through backend plugin ``env_type``."""
    from runtimed.backend import BuildRequest
    from runtimed.config import load_config
    from runtimed.core.records import ReadyEnv
    from runtimed.envs.build import build_env
    from runtimed.envs.bytecode_store import store_for_build
    from runtimed.envs.envdir import Lease, write_lease
    from runtimed.envs.plugins import load_backend
    from runtimed.util.files import new_env_id, now_iso
    from runtimed.util.paths import Paths

    paths = Paths.resolve(cache_dir=cache_dir)
    backend = load_backend(env_type)
    config = load_config(paths.config_file).backend(env_type)
    env_id = new_env_id()
    path = paths.env_path(env_type, env_id)
    paths.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # private, as the daemon wants it
    path.parent.mkdir(parents=True, exist_ok=True)
    request = BuildRequest(
        env_id=env_id,
        path=path,
        config=config,
        cache_dir=paths.backend_cache(env_type),
        bytecode_store=store_for_build(paths.cache_dir),
    )
    try:
        manifest = build_env(backend, request)
    except BaseException:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        raise
    # Leased to us and kept: a daemon started later never pools or deletes it.
    write_lease(path, Lease(pid=os.getpid(), create_time=None, taken_at=now_iso(), keep=True))
    return PooledEnv.from_ready(ReadyEnv(path=path, manifest=manifest))
