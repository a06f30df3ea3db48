"""The kernelspec's argv run as VS Code and other argv front ends run it (real daemon,
real kernels): the front end picks the ports, spawns the argv and connects itself."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.manager import KernelManager

from runtimed.kernels.specs import install, kernel_spec
from tests.support.autostart import autostart_home
from tests.support.daemon import DaemonProcess, wait_for

pytestmark = pytest.mark.slow

# A kernel outlives a vanished owner by kernel_owner_grace_s; the launcher asks for none.
CONFIG = "[backends.uv]\npool_size = 1\nkernels = 1\n[daemon]\nkernel_owner_grace_s = 300\n"
NO_PRESTART = "[backends.uv]\npool_size = 1\nkernels = 0\n"
PROBE = "import json, os, sys\nprint(json.dumps({'cwd': os.getcwd(), 'mark': os.environ.get('RT_MARK'), "
PROBE += "'pid': os.getpid(), 'prefix': sys.prefix, 'direct': os.environ.get('RUNTIMED_KERNEL_DIRECT')}))"


def free_ports() -> dict[str, Any]:
    """Connection info on five free ports, as a front end chooses them."""
    socks = [socket.socket() for _ in range(5)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    names = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
    info: dict[str, Any] = dict(zip(names, ports, strict=True))
    info.update(ip="127.0.0.1", transport="tcp", signature_scheme="hmac-sha256", key=secrets.token_hex(16))
    return info


def vscode_flags(info: dict[str, Any], connection_file: Path) -> list[str]:
    """What vscode-jupyter (kernelProcess.node.ts) appends in place of ``-f {connection_file}``."""
    return [
        f"--ip={info['ip']}",
        f"--stdin={info['stdin_port']}",
        f"--control={info['control_port']}",
        f"--hb={info['hb_port']}",
        '--Session.signature_scheme="hmac-sha256"',
        f'--Session.key=b"{info["key"]}"',
        f"--shell={info['shell_port']}",
        '--transport="tcp"',
        f"--iopub={info['iopub_port']}",
        f"--f={connection_file}",
    ]


def spec_argv(daemon: DaemonProcess) -> list[str]:
    argv: list[str] = kernel_spec("uv", socket=str(daemon.socket))["argv"]  # type: ignore[assignment]
    return argv


class Launched:
    """A launcher spawned the way a front end does it, and a client on its ports."""

    def __init__(self, argv: list[str], info: dict[str, Any], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stderr=subprocess.PIPE, start_new_session=True)
        self.client = BlockingKernelClient()
        self.client.load_connection_info(info)
        self.client.start_channels()
        try:
            wait_for(self._answers, timeout=120, what="a kernel_info_reply")
        except BaseException:
            self.close()
            raise

    def _answers(self) -> bool:
        """A kernel_info_reply, and IOPub subscribed (its status messages arrive), as
        wait_for_ready checks; but that one calls a client without a manager dead while
        its heartbeat is not yet beating (the plain kernel takes over a second)."""
        assert self.proc.poll() is None, "the launcher exited"
        msg_id = self.client.kernel_info()
        try:
            while self.client.get_shell_msg(timeout=1)["parent_header"].get("msg_id") != msg_id:
                pass
            self.client.get_iopub_msg(timeout=0.5)
        except Exception:
            return False
        while True:  # drain IOPub
            try:
                self.client.get_iopub_msg(timeout=0.2)
            except Exception:
                return True

    def run(self, code: str) -> tuple[dict[str, Any], str]:
        out: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])

        reply = self.client.execute_interactive(code, timeout=60, output_hook=hook)
        return reply["content"], "".join(out)

    def probe(self) -> dict[str, Any]:
        reply, out = self.run(PROBE)
        assert reply["status"] == "ok", reply
        probed: dict[str, Any] = json.loads(out)
        return probed

    def close(self) -> None:
        """Stop the client and the launcher; its stderr is then in ``stderr_text``."""
        self.client.stop_channels()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        assert self.proc.stderr is not None
        self.stderr_text = self.proc.stderr.read().decode(errors="replace")
        self.proc.stderr.close()


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def front_end(tmp_path: Path, name: str) -> tuple[Path, dict[str, str]]:
    """A notebook dir and an environment of the front end's own."""
    cwd = tmp_path / name
    cwd.mkdir()
    return cwd, {**os.environ, "RT_MARK": name}


def _served_by_daemon(daemon: DaemonProcess, launched: Launched, probe: dict[str, Any]) -> None:
    assert probe["pid"] != launched.proc.pid  # the launcher stays; the kernel is the daemon's
    assert Path(probe["prefix"]).parent == daemon.cache_dir / "envs", probe  # a pooled env
    assert psutil.Process(probe["pid"]).ppid() == daemon.proc.pid  # type: ignore[union-attr]


def test_argv_with_a_connection_file_gets_the_daemons_kernel(
    daemon_factory: type[DaemonProcess], tmp_path: Path
) -> None:
    """jupyter_client's way: ``-f FILE`` written beforehand. cwd and env are the
    launcher's, SIGINT to it interrupts, and its exit status is the kernel's."""
    daemon = daemon_factory(config=CONFIG).start()
    daemon.wait_pool("uv", 1, timeout=240)
    wait_for(lambda: daemon.status().pools["uv"].kernels.available >= 1, timeout=240, what="a pre-started kernel")  # type: ignore[union-attr]
    info = free_ports()
    connection_file = tmp_path / "kernel-1.json"
    connection_file.write_text(json.dumps(info))
    argv = [a.replace("{connection_file}", str(connection_file)) for a in spec_argv(daemon)]
    cwd, env = front_end(tmp_path, "notebook-a")
    launched = Launched(argv, info, cwd, env)
    try:
        probe = launched.probe()
        assert probe["cwd"] == str(cwd) and probe["mark"] == "notebook-a", probe
        _served_by_daemon(daemon, launched, probe)

        msg_id = launched.client.execute("import time; print('running', flush=True); time.sleep(30)")
        wait_for(lambda: _running(launched.client, msg_id), timeout=30, what="the cell to run")
        os.kill(launched.proc.pid, signal.SIGINT)
        reply = launched.client.get_shell_msg(timeout=20)
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt", reply
        assert launched.proc.poll() is None  # the interrupt did not end anything

        launched.client.execute("import os; os._exit(3)")
        wait_for(lambda: gone(probe["pid"]), timeout=60, what="the kernel to exit")
        assert launched.proc.wait(30) == 3
    finally:
        launched.close()


def _running(client: BlockingKernelClient, msg_id: str) -> bool:
    """The cell printed: it runs, with ipykernel's SIGINT handler in place (before the
    cell starts, ipykernel ignores SIGINT)."""
    while True:
        try:
            msg = client.get_iopub_msg(timeout=0.2)
        except Exception:
            return False
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            return True


def other_python(tmp_path: Path) -> str:
    """A fresh venv without runtimed: the interpreter VS Code may put in argv[0]."""
    venv = tmp_path / "other-venv"
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    probe = subprocess.run([python, "-c", "import runtimed"], capture_output=True, check=False, cwd=tmp_path)
    assert probe.returncode != 0
    return python


def test_vscode_style_launch_by_another_interpreter(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    """VS Code's way: ``-f`` replaced by port flags (no file written) and argv[0] by
    another interpreter. ``kill -9`` of the launcher ends the kernel at once (the
    daemon's owner grace here is 300 s); SIGTERM ends it with the kernel's status."""
    daemon = daemon_factory(config=CONFIG).start()
    python = other_python(tmp_path)
    daemon.wait_pool("uv", 1, timeout=240)
    wait_for(lambda: daemon.status().pools["uv"].kernels.available >= 1, timeout=240, what="a pre-started kernel")  # type: ignore[union-attr]
    rest = [a for a in spec_argv(daemon)[1:] if a not in ("-f", "{connection_file}")]
    cwd, env = front_end(tmp_path, "notebook-b")
    for kill in (signal.SIGKILL, signal.SIGTERM):
        daemon.wait_pool("uv", 1, timeout=240)  # the last take emptied it (else: a plain kernel)
        info = free_ports()
        argv = [python, *rest, *vscode_flags(info, tmp_path / f"kernel-v2-{kill}.json")]
        launched = Launched(argv, info, cwd, env)
        try:
            probe = launched.probe()
            assert probe["cwd"] == str(cwd) and probe["mark"] == "notebook-b", probe
            _served_by_daemon(daemon, launched, probe)
            os.kill(launched.proc.pid, kill)
            wait_for(lambda pid=probe["pid"]: gone(pid), timeout=20, what=f"the kernel to end after {kill.name}")
            assert launched.proc.wait(30) == -kill  # SIGTERM: the kernel's own death by it
        finally:
            launched.close()


def test_no_daemon_a_plain_kernel_now_and_a_daemon_for_the_next(
    tmp_path: Path, uv_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with autostart_home(tmp_path / "home", uv_cache, monkeypatch) as home:
        info = free_ports()
        connection_file = tmp_path / "kernel-3.json"
        connection_file.write_text(json.dumps(info))
        argv = [a.replace("{connection_file}", str(connection_file)) for a in kernel_spec("uv")["argv"]]  # type: ignore[attr-defined]
        cwd, env = front_end(tmp_path, "notebook-c")
        launched = Launched(argv, info, cwd, env)
        try:
            probe = launched.probe()
            assert probe["pid"] == launched.proc.pid  # the launcher became the plain kernel
            assert probe["prefix"] == sys.prefix and probe["cwd"] == str(cwd) and probe["mark"] == "notebook-c"
            wait_for(home.daemons, timeout=60, what="a daemon started in the background")
        finally:
            launched.close()
        assert "no runtimed daemon" in launched.stderr_text


def test_provisioner_fallback_runs_the_argv_without_asking_again(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provisioner falls back to the argv (here: a backend the daemon lacks); the
    launcher must not ask the daemon again (its argv names the uv backend, which serves)."""
    daemon = daemon_factory(config=NO_PRESTART).start()  # the pooled env stays in the pool
    daemon.wait_pool("uv", 1, timeout=240)
    spec = kernel_spec("uv", socket=str(daemon.socket))
    spec["metadata"]["kernel_provisioner"]["config"]["backend"] = "nope"  # type: ignore[index]
    install(tmp_path / "jupyter" / "kernels", "rt-direct", spec)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))
    km = KernelManager(kernel_name="rt-direct")
    km.start_kernel()
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        out: list[str] = []
        reply = client.execute_interactive(PROBE, timeout=60, output_hook=lambda m: out.append(
            m["content"].get("text", "")))  # fmt: skip
        assert reply["content"]["status"] == "ok"
        probe = json.loads("".join(out))
        assert probe["prefix"] == sys.prefix  # the plain kernel, not one of the daemon's
        assert probe["direct"] is None  # the switch is not left in the kernel's environment
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
