"""The Python client: daemon-first, never raising when asked not to, in-process fallback."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from runtimed import DaemonNotRunning, take_env, try_get_pooled_env
from runtimed.client import Client, DaemonError
from runtimed.envs.envdir import read_lease, read_manifest
from runtimed.protocol.messages import Empty, EnvReply, Error, Flushed, Pong, PooledEnv, TakeKernel, encode
from tests.support.daemon import DaemonProcess


def test_try_get_pooled_env_is_none_without_daemon(tmp_path: Path) -> None:
    assert try_get_pooled_env("uv", socket_path=tmp_path / "nothing.sock") is None
    assert try_get_pooled_env("uv") is None  # the default paths point at an empty temp dir


def test_client_raises_daemon_not_running(tmp_path: Path) -> None:
    with pytest.raises(DaemonNotRunning):
        Client(tmp_path / "nothing.sock").ping()
    with pytest.raises(DaemonNotRunning):
        take_env("uv", fallback=False, socket_path=tmp_path / "nothing.sock")


def test_take_env_builds_in_process_without_daemon(
    tmp_path: Path, uv_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    env = take_env("uv", cache_dir=tmp_path / "cache", socket_path=tmp_path / "nothing.sock")
    path = Path(env.venv_path)
    assert path.is_relative_to(tmp_path / "cache" / "envs")
    assert read_manifest(path) is not None
    lease = read_lease(path)
    assert lease is not None and lease.keep  # it belongs to the caller
    subprocess.run([env.python_path, "-c", "import ipykernel"], check=True)


def test_try_get_pooled_env_from_a_daemon(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\n").start()
    env = try_get_pooled_env("uv", wait_s=120, socket_path=daemon.socket)
    assert env is not None and Path(env.python_path).exists()
    assert try_get_pooled_env("no-such-backend", socket_path=daemon.socket) is None


# ---------------------------------------------------------------- typed replies (no daemon)


def _answering(*replies: object) -> tuple[Client, socket.socket]:
    """A client whose connection is one end of a socket pair; the other end has sent ``replies``."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    client = Client(Path("unused.sock"), timeout=5.0)
    client._sock = ours
    for reply in replies:
        theirs.sendall(encode(reply))
    return client, theirs


PONG = Pong(protocol_version=1, daemon_version="v")


def test_each_method_gets_the_reply_its_request_names() -> None:
    env = PooledEnv(env_type="uv", venv_path="/e", python_path="/e/bin/python", id="abc")
    client, theirs = _answering(EnvReply(env=env), Empty(), Flushed(removed=3), PONG)
    with theirs, client:
        assert client.take("uv") == env
        assert client.take("uv") is None
        assert client.flush() == 3
        assert client.ping() == PONG


@pytest.mark.parametrize(
    ("call", "tag"),
    [
        (lambda c: c.take("uv"), "take"),
        (lambda c: c.status(), "status"),
        (lambda c: c.flush(), "flush"),
        (lambda c: c.envs(), "envs"),
        (lambda c: c.take_kernel(TakeKernel(env_type="uv")), "take_kernel"),
    ],
)
def test_a_reply_of_the_wrong_type_is_refused(call: Callable[[Client], object], tag: str) -> None:
    client, theirs = _answering(PONG)
    with theirs, client, pytest.raises(DaemonError) as caught:
        call(client)
    assert caught.value.code == "unexpected_reply"
    assert f"a {tag!r} request got a 'pong' reply" in caught.value.message


def test_an_error_reply_raises_with_its_code() -> None:
    client, theirs = _answering(Error(code="unknown_env_type", message="no backend 'x'"))
    with theirs, client, pytest.raises(DaemonError) as caught:
        client.take("x")
    assert (caught.value.code, caught.value.message) == ("unknown_env_type", "no backend 'x'")
