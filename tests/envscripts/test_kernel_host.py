"""The kernel host (run by an env's python) taking over a connection a front end chose,
driven directly over its control channel as the daemon drives it: with this
interpreter's ipykernel (7.x, what pooled envs carry) and with the oldest ipykernel
runtimed supports (6.x, in a venv of its own)."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from runtimed.envscripts import KERNEL_HOST

pytestmark = pytest.mark.slow  # starts kernels (and builds a venv with the oldest ipykernel)

OLDEST_IPYKERNEL = "ipykernel==6.29.5"


@pytest.fixture(scope="module")
def oldest_python(tmp_path_factory: pytest.TempPathFactory, uv_cache: Path) -> str:
    from runtimed_uv.backend import find_uv

    venv = tmp_path_factory.mktemp("ipykernel6") / "venv"
    uv = find_uv()
    assert uv
    env = {**os.environ, "UV_CACHE_DIR": str(uv_cache)}
    subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(venv)], check=True, env=env)
    subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), OLDEST_IPYKERNEL],
                   check=True, env=env)  # fmt: skip
    return str(venv / "bin" / "python")


class Host:
    """A pre-started kernel host and its control channel."""

    def __init__(self, python: str, workdir: Path) -> None:
        own = workdir / "own.json"
        ports = {f"{c}_port": 0 for c in ("shell", "iopub", "stdin", "hb", "control")}
        own.write_text(json.dumps({"ip": "127.0.0.1", "transport": "tcp", "signature_scheme": "hmac-sha256",
                                   "key": "pre-started-key", **ports}))  # fmt: skip
        ours, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [python, str(KERNEL_HOST), "--control-fd", str(theirs.fileno()), "-f", str(own)],
            pass_fds=(theirs.fileno(),), cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        theirs.close()
        self.channel = ours.makefile("rwb", buffering=0)
        ready = self.read()
        assert ready["event"] == "ready", ready
        self.own: dict[str, Any] = ready["connection"]

    def read(self) -> dict[str, Any]:
        line = self.channel.readline()
        return json.loads(line) if line else {"event": "exited"}

    def claim(self, **message: Any) -> dict[str, Any]:
        self.channel.write((json.dumps({"env": dict(os.environ), "argv": [], **message}) + "\n").encode())
        return self.read()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(params=["newest", "oldest"])
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Host]:
    python = sys.executable if request.param == "newest" else request.getfixturevalue("oldest_python")
    started = Host(python, tmp_path)
    yield started
    started.stop()


def front_end_connection(tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """A connection file as a front end writes it: ports it chose, a key of its own."""
    path, info = write_connection_file(str(tmp_path / "front-end.json"), ip="127.0.0.1")
    return path, {k: v.decode() if isinstance(v, bytes) else v for k, v in info.items()}


def client(info: dict[str, Any]) -> BlockingKernelClient:
    kc = BlockingKernelClient()
    kc.load_connection_info(info)
    kc.start_channels()
    return kc


def run(kc: BlockingKernelClient, code: str) -> tuple[dict[str, Any], str]:
    msg_id = kc.execute(code)
    reply = kc.get_shell_msg(timeout=30)
    out = []
    while True:
        msg = kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return reply["content"], "".join(out)


def test_a_pre_started_kernel_serves_the_front_ends_ports_and_key(host: Host, tmp_path: Path) -> None:
    path, info = front_end_connection(tmp_path)
    assert host.claim(cwd=str(tmp_path), connection=info, connection_file=path) == {"event": "claimed"}
    kc = client(info)
    try:
        kc.wait_for_ready(timeout=30)
        reply, out = run(kc, "import os; from ipykernel.connect import get_connection_file\n"
                             "print(os.getpid(), os.getcwd(), get_connection_file())")  # fmt: skip
        assert reply["status"] == "ok" and reply["execution_count"] == 1
        assert out.split() == [str(host.proc.pid), str(tmp_path), path]
        assert kc.is_alive() and kc.hb_channel.is_beating()
        # input() goes through the stdin channel on its new port.
        kc.allow_stdin = True
        msg_id = kc.execute("print(input('name? '))", allow_stdin=True)
        request = kc.get_stdin_msg(timeout=30)
        assert request["content"]["prompt"] == "name? "
        kc.input("runtimed")
        assert kc.get_shell_msg(timeout=30)["parent_header"]["msg_id"] == msg_id
    finally:
        kc.stop_channels()
    # The kernel's own ports are freed, and its own key no longer works anywhere.
    for channel in ("shell", "iopub", "stdin", "control", "hb"):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", host.own[f"{channel}_port"])) != 0, channel
    stale = client({**info, "key": host.own["key"]})
    try:
        stale.kernel_info()
        with pytest.raises((queue.Empty, ValueError)):  # no valid reply to a message signed with the old key
            stale.get_shell_msg(timeout=1.0)
    finally:
        stale.stop_channels()


def test_a_port_taken_in_the_meantime_fails_the_claim(host: Host, tmp_path: Path) -> None:
    _, info = front_end_connection(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", info["control_port"]))
        squatter.listen()
        answer = host.claim(cwd=str(tmp_path), connection=info)
    assert answer["event"] == "failed" and "in use" in answer["error"].lower(), answer
    assert host.proc.wait(10) == 1  # the daemon discards it and launches a kernel as before


def test_a_shut_down_kernel_runs_atexit_handlers_and_exits(host: Host, tmp_path: Path) -> None:
    _, info = front_end_connection(tmp_path)
    assert host.claim(cwd=str(tmp_path), connection=info)["event"] == "claimed"
    kc = client(info)
    marker = tmp_path / "atexit-ran"
    try:
        kc.wait_for_ready(timeout=30)
        run(kc, f"import atexit, pathlib; atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')")
        kc.shutdown(restart=True)
        assert kc.get_control_msg(timeout=30)["msg_type"] == "shutdown_reply"
    finally:
        kc.stop_channels()
    assert host.proc.wait(10) == 0
    assert marker.read_text() == "yes"
