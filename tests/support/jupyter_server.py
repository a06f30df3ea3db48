"""A real jupyter_server on 127.0.0.1 for tests and benchmarks: REST and kernel websocket."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import websocket

from tests.support.daemon import wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class JupyterServer:
    """``python -m jupyter_server`` serving ``root`` with a token, in its own env."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root.parent / f"jupyter-server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> JupyterServer:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}", "--no-browser",
                "--ServerApp.port_retries=0", "--allow-root",
            ],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
        )  # fmt: skip
        log.close()
        try:
            wait_for(self._up, timeout=180, what="jupyter_server to answer")
        except BaseException:
            self.kill()
            raise
        return self

    def _up(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"jupyter_server exited:\n{self.log_path.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            self.request("GET", "/api/status")
            return True
        return False

    def request(self, method: str, path: str, body: Any = None, timeout: float = 120) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            text = resp.read()
        return json.loads(text) if text else None

    def kernel_socket(self, kernel_id: str) -> KernelSocket:
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{self.port}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}",
            header=[f"Authorization: token {self.token}"],
            timeout=120,
        )
        return KernelSocket(ws)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, 9)
            self.proc.wait(10)


class KernelSocket:
    """The kernel websocket of jupyter_server, speaking the JSON message protocol."""

    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws = ws
        self.session = uuid.uuid4().hex

    def send(self, msg_type: str, content: dict[str, Any], channel: str = "shell") -> str:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id, "msg_type": msg_type, "username": "test", "session": self.session,
            "date": "", "version": "5.3",
        }  # fmt: skip
        msg = {"header": header, "parent_header": {}, "metadata": {}, "content": content, "channel": channel}
        self.ws.send(json.dumps(msg))
        return msg_id

    def receive(self, deadline: float) -> dict[str, Any]:
        """The next message, or TimeoutError at ``deadline`` (``time.monotonic()``). The
        socket's own timeout is no bound: the server's pings end each wait without a message."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from the kernel websocket in time")
            self.ws.settimeout(min(left, 1.0))
            with contextlib.suppress(websocket.WebSocketTimeoutException):
                return dict(json.loads(self.ws.recv()))

    def execute(self, code: str, timeout: float = 120) -> str:
        """Run ``code``; return its stdout once the kernel is idle again."""
        msg_id = self.send("execute_request", _execute(code))
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.receive(deadline)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                raise AssertionError(f"{msg['content']['ename']}: {msg['content']['evalue']}")
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)

    def first_output(self, code: str = "print('ready')", timeout: float = 120) -> str:
        """Send ``code`` at once and return the first stream text it prints."""
        msg_id = self.send("execute_request", _execute(code))
        deadline = time.monotonic() + timeout
        while True:
            msg = self.receive(deadline)
            if msg.get("parent_header", {}).get("msg_id") == msg_id and msg["msg_type"] == "stream":
                return str(msg["content"]["text"])

    def nudge(self, every: float = 0.05, timeout: float = 120) -> None:
        """After a restart, send ``print`` every 50 ms until one prints, as front ends
        make sure of a kernel (jupyter_server's nudge on connect, jupyter_client's
        wait_for_ready): a websocket held open through a restart keeps the server's
        zmq sockets, which reconnect each on its own, and what the new kernel
        publishes before iopub is back is lost (a single request's output can be)."""
        sent: set[str] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent.add(self.send("execute_request", _execute("print('ready')")))
            with contextlib.suppress(TimeoutError):
                msg = self.receive(min(time.monotonic() + every, deadline))
                if msg.get("parent_header", {}).get("msg_id") in sent and msg["msg_type"] == "stream":
                    return
        raise TimeoutError("no output after the restart")

    def close(self) -> None:
        self.ws.close()


def _execute(code: str) -> dict[str, Any]:
    return {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False}
