"""Kernel requests that cannot be served: a clear error, nothing claimed or leaked,
no secret (the key, the front end's environment) in the daemon's log."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import AsyncKernelManager

from runtimed.client import DaemonError
from runtimed.daemon.server import Server
from runtimed.kernels.process import kill_group
from runtimed.protocol.messages import Error, TakeKernel
from tests.kernels.test_provisioner import install_spec
from tests.support.daemon import DaemonProcess, wait_for

PRESTARTED = "[backends.uv]\npool_size = 1\nkernels = 1\npreimported = 1\n"
KEY = "0123456789abcdef-secret-hmac-key"
MARKER = "marker-value-of-the-front-ends-environment"


def _connection() -> dict[str, Any]:
    ports = {f"{c}_port": 40000 + i for i, c in enumerate(("shell", "iopub", "stdin", "hb", "control"))}
    return {"ip": "127.0.0.1", "transport": "tcp", "signature_scheme": "hmac-sha256", "key": KEY, **ports}


def _request(cwd: str, *, restart: bool = False) -> TakeKernel:
    env = {**os.environ, "RT_MARKER": MARKER}
    return TakeKernel(env_type="uv", cwd=cwd, env=env, owner_pid=os.getpid(), wait_s=1.0,
                      connection=_connection() if restart else None)  # fmt: skip


def _ready(daemon: DaemonProcess) -> bool:
    kernels = daemon.status().pools["uv"].kernels
    return kernels is not None and kernels.available >= 1 and kernels.preimported >= 1


def _daemon_leases(daemon: DaemonProcess) -> list[str]:
    pid = daemon.daemon_json()["pid"]
    with daemon.client() as client:
        return [e.path for e in client.envs() if e.state == "leased" and e.holder_pid == pid]


@pytest.mark.slow
def test_bad_cwd_requests_get_a_clear_error_and_leak_nothing(
    daemon_factory: type[DaemonProcess], tmp_path: Path
) -> None:
    daemon = daemon_factory(config=PRESTARTED).start()
    wait_for(lambda: _ready(daemon), timeout=180, what="a pre-started kernel and a pre-imported interpreter")
    kernels_dir = daemon.cache_dir / "kernels"
    idle_dirs = set(kernels_dir.iterdir())
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    bad = [str(tmp_path / "deleted-notebook-folder"), str(a_file), str(tmp_path) + "/nul\0here"]
    for cwd in bad:
        for restart in (False, True):
            with daemon.client() as client, pytest.raises(DaemonError) as failure:
                client.take_kernel(_request(cwd, restart=restart))
            assert failure.value.code == "invalid_kernel_request", failure.value
            assert "working directory" in failure.value.message
    # Nothing was claimed: the same idle kernels, no env leased to the daemon, no stray dir.
    assert set(kernels_dir.iterdir()) == idle_dirs
    assert _daemon_leases(daemon) == []
    assert _ready(daemon)
    with daemon.client() as client:
        kernel = client.take_kernel(_request(str(tmp_path)))
    assert kernel is not None and kernel.prestarted, kernel
    kill_group(kernel.pid)
    log = (daemon.cache_dir / "runtimed.log").read_text(errors="replace") + daemon.log_path.read_text(errors="replace")
    assert KEY not in log and MARKER not in log


def test_a_failing_request_is_logged_without_its_key_or_environment(caplog: pytest.LogCaptureFixture) -> None:
    class Failing:
        async def take_kernel(self, request: TakeKernel, pid: int | None) -> Error:
            raise RuntimeError("boom")

    async def on_shutdown() -> None:
        return None

    server = Server(Failing(), Path("unused.sock"), on_shutdown)  # type: ignore[arg-type]
    with caplog.at_level(logging.DEBUG):
        reply = asyncio.run(server._dispatch(_request("/", restart=True), 1, lambda: False))
    assert isinstance(reply, Error) and reply.code == "internal"
    assert "TakeKernel request failed" in caplog.text
    assert KEY not in caplog.text and MARKER not in caplog.text
    assert KEY not in repr(_request("/", restart=True)) and MARKER not in repr(_request("/"))


async def _start_error(name: str, cwd: str) -> BaseException:
    km = AsyncKernelManager(kernel_name=name)
    try:
        await km.start_kernel(cwd=cwd)
    except Exception as exc:
        return exc
    await km.shutdown_kernel(now=True)
    raise AssertionError(f"kernel {name!r} started in {cwd!r}")


@pytest.mark.slow
def test_a_missing_cwd_fails_as_with_a_plain_kernelspec(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = daemon_factory(config=PRESTARTED).start()
    install_spec(daemon, tmp_path, monkeypatch)
    plain = tmp_path / "jupyter" / "kernels" / "plain"
    plain.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (plain / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "plain", "language": "python"}))
    wait_for(lambda: _ready(daemon), timeout=180, what="a pre-started kernel and a pre-imported interpreter")
    missing = str(tmp_path / "deleted-notebook-folder")
    expected = asyncio.run(_start_error("plain", missing))
    got = asyncio.run(_start_error("rt", missing))
    assert type(got) is type(expected) and str(got) == str(expected), (got, expected)
    assert _daemon_leases(daemon) == [] and _ready(daemon)
