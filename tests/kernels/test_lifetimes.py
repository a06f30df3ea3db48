"""Lifetimes of kernels across daemon crashes and restarts (real daemon, real kernels)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import psutil
from jupyter_client.blocking import BlockingKernelClient

from runtimed.protocol.messages import TakeKernel
from tests.support.daemon import DaemonProcess, wait_for

CONFIG = "[backends.uv]\npool_size = 1\nkernels = 2\n[daemon]\nlease_check_s = 0.3\n"


def _kernels(daemon: DaemonProcess) -> dict[str, dict[str, object]]:
    records = {}
    for record in (daemon.cache_dir / "kernels").glob("*/record.json"):
        data = json.loads(record.read_text())
        records[data["id"]] = data
    return records


def _answers_kernel_info(connection: dict[str, object]) -> bool:
    client = BlockingKernelClient()
    client.load_connection_info(connection)
    try:
        client.kernel_info()
        reply = client.get_shell_msg(timeout=30)
        return bool(reply["msg_type"] == "kernel_info_reply")
    finally:
        client.stop_channels()


def test_handed_out_kernel_outlives_a_daemon_crash_idle_ones_do_not(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=CONFIG).start()

    def two_ready() -> bool:
        kernels = daemon.status().pools["uv"].kernels
        return kernels is not None and kernels.available == 2 and kernels.target == 2

    wait_for(two_ready, timeout=240, what="two pre-started kernels")
    row = next(line for line in daemon.run_cli("status").stdout.splitlines() if line.startswith("uv "))
    assert "2/2" in row.split()[4]
    with daemon.client() as client:
        kernel = client.take_kernel(TakeKernel(env_type="uv", env=dict(os.environ), owner_pid=os.getpid()))
    assert kernel is not None and kernel.prestarted
    data = json.loads(daemon.run_cli("status", "--json").stdout)
    assert data["pools"]["uv"]["kernels"]["handed_out"] == 1
    idle = [int(str(r["pid"])) for r in _kernels(daemon).values() if r["state"] == "idle"]
    assert idle and kernel.pid not in idle
    # Connection files are private.
    connection_file = Path(kernel.log_file).with_name("connection.json")
    assert connection_file.stat().st_mode & 0o777 == 0o600
    assert connection_file.parent.stat().st_mode & 0o777 == 0o700
    assert kernel.connection["ip"] == "127.0.0.1"

    daemon.kill()  # SIGKILL of the supervisor
    # Never handed-out kernels go with their daemon; the handed-out one lives on.
    wait_for(lambda: not any(psutil.pid_exists(p) for p in idle), timeout=30, what="idle kernels to exit")
    assert psutil.pid_exists(kernel.pid)
    assert _answers_kernel_info(kernel.connection)

    daemon.start()
    assert psutil.pid_exists(kernel.pid) and Path(kernel.env.venv_path).exists()  # still leased
    wait_for(lambda: daemon.status().pools["uv"].kernels.handed_out == 1, timeout=30, what="the kernel adopted")  # type: ignore[union-attr]

    os.kill(kernel.pid, signal.SIGTERM)  # the front end shuts it down
    wait_for(lambda: not Path(kernel.env.venv_path).exists(), timeout=30, what="its env to be deleted")
    wait_for(lambda: kernel.id not in _kernels(daemon), timeout=30, what="its record to be removed")
    # Teardown stops the daemon and checks that no process (idle kernels included) is left.


def _running(pid: int) -> bool:
    """Alive and not a zombie (a stopped process counts as running)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_idle_kernels_never_outlive_a_supervisor_kill(daemon_factory: type[DaemonProcess]) -> None:
    """After a ``kill -9`` of the supervisor, an idle kernel's host exits by itself (its
    control channel closed); one that could not notice (frozen with SIGSTOP) is killed
    by the next start. Both records and envs are cleaned up; no process is left."""
    # No pre-imported interpreter: its record would be a third idle one, started at any time.
    daemon = daemon_factory(config=CONFIG.replace("kernels = 2\n", "kernels = 2\npreimported = 0\n")).start()

    def two_ready() -> bool:
        kernels = daemon.status().pools["uv"].kernels
        return kernels is not None and kernels.available == 2 and len(_kernels(daemon)) == 2

    wait_for(two_ready, timeout=240, what="two pre-started kernels")
    records = _kernels(daemon)
    assert [r["state"] for r in records.values()] == ["idle", "idle"]
    (exits, frozen) = [(str(r["id"]), int(str(r["pid"])), Path(str(r["env_path"]))) for r in records.values()]
    try:
        os.kill(frozen[1], signal.SIGSTOP)  # cannot see its channel close: it survives the supervisor
        assert _running(exits[1]) and _running(frozen[1])  # both alive just before the kill
        daemon.kill()

        wait_for(lambda: not _running(exits[1]), timeout=15, what="the idle kernel host to exit by itself")
        assert _running(frozen[1]) and psutil.Process(frozen[1]).status() == psutil.STATUS_STOPPED
        assert (daemon.cache_dir / "kernels" / frozen[0]).is_dir()  # nobody cleaned up yet

        daemon.start()
        assert not _running(frozen[1])  # recovery runs before the daemon listens
        assert f"killing pre-started kernel {frozen[0]} (pid {frozen[1]}) left by a previous daemon" in daemon.output()
        for kernel_id, _pid, env in (exits, frozen):
            wait_for(lambda: not env.exists(), timeout=30, what=f"the env of {kernel_id} deleted")  # noqa: B023
            assert not (daemon.cache_dir / "kernels" / kernel_id).exists()
        wait_for(two_ready, timeout=240, what="two new pre-started kernels")
        assert not {exits[0], frozen[0]} & set(_kernels(daemon))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(frozen[1], signal.SIGKILL)
    # Teardown stops the daemon and checks that no process is left.
