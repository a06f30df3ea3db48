"""A real jupyter_server on the runtimed kernelspec: REST, kernel websocket, restart, kill -9."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from tests.kernels.test_provisioner import install_spec, wait_kernels
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.jupyter_server import JupyterServer

CONFIG = "[backends.uv]\npool_size = 2\nkernels = 1\n[daemon]\nlease_check_s = 0.3\nkernel_owner_grace_s = 1\n"


def test_notebook_session_restart_with_open_websocket_and_server_kill(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = daemon_factory(config=CONFIG).start()
    install_spec(daemon, tmp_path, monkeypatch)
    root = tmp_path / "root"
    (root / "nb").mkdir(parents=True)
    (root / "nb" / "data.txt").write_text("from the notebook dir\n")
    wait_kernels(daemon)
    daemon.wait_pool("uv", 2)  # the hand-out's refill takes one; the restart another
    server = JupyterServer(root, dict(os.environ)).start()
    try:
        session = server.request(
            "POST", "/api/sessions", {"path": "nb/probe.ipynb", "type": "notebook", "kernel": {"name": "rt"}}
        )
        kernel_id = session["kernel"]["id"]
        ws = server.kernel_socket(kernel_id)
        assert ws.first_output() == "ready\n"
        out = ws.execute("import os, sys; print(os.getpid(), sys.prefix, open('data.txt').read().strip())")
        pid_text, prefix, text = out.split(maxsplit=2)
        assert text.strip() == "from the notebook dir"
        assert prefix.startswith(str(daemon.cache_dir / "envs"))
        assert "handed out pre-started kernel" in (daemon.cache_dir / "runtimed.log").read_text()

        ws.execute("x = 5")
        wait_kernels(daemon)  # refilled: the restart is served by a pre-started kernel taking the ports over
        server.request("POST", f"/api/kernels/{kernel_id}/restart")
        # The websocket opened before the restart still reaches the new kernel, once
        # the server's zmq sockets under it are back (each reconnects on its own: a
        # front end makes sure, as JupyterLab does by reconnecting, which nudges).
        ws.nudge()
        out = ws.execute("import os; print('x' in dir(), os.getpid())")
        seen_x, new_pid = out.split()
        assert seen_x == "False" and int(new_pid) != int(pid_text)
        assert (daemon.cache_dir / "runtimed.log").read_text().count("handed out pre-started kernel") == 2
        out = ws.execute("import sys; print(sys.prefix)")
        new_prefix = out.strip()

        server.kill()  # kill -9: nobody shuts the kernel down but the daemon's owner watch
        wait_for(lambda: not psutil.pid_exists(int(new_pid)), timeout=60, what="the kernel of a dead server to end")
        for path in (prefix, new_prefix):
            wait_for(lambda p=path: not Path(p).exists(), timeout=60, what=f"{path} to be deleted")
    finally:
        server.stop()
