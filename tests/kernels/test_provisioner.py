"""runtimed-provisioner with real kernels, through jupyter_client's AsyncKernelManager."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import psutil
import pytest
import zmq

from runtimed.kernels.provisioner import RECONNECT_IVL_MS
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.kernel import run_code, running_kernel

PRESTARTED = "[backends.uv]\npool_size = 2\nkernels = 1\n[daemon]\nlease_check_s = 0.3\n"


def install_spec(daemon: DaemonProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = "rt") -> None:
    kernels = tmp_path / "jupyter" / "kernels"
    result = daemon.run_cli(
        "kernel", "install", "--name", name, "--kernels-dir", str(kernels), "--socket", str(daemon.socket)
    )
    assert result.returncode == 0, result.stderr
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))


def wait_kernels(daemon: DaemonProcess, available: int = 1, preimported: int = 0) -> None:
    def check() -> bool:
        kernels = daemon.status().pools["uv"].kernels
        return kernels is not None and kernels.available >= available and kernels.preimported >= preimported

    wait_for(check, timeout=180, what=f"{available} pre-started kernel(s), {preimported} pre-imported")


def notebook_dir(tmp_path: Path) -> Path:
    nb = tmp_path / "notebooks"
    nb.mkdir()
    (nb / "helper_mod.py").write_text("VALUE = 42\n")
    return nb


PROBE = (
    "import json, os, sys, helper_mod\n"
    "print(json.dumps({'cwd': os.getcwd(), 'session': os.environ.get('JPY_SESSION_NAME'),"
    " 'var': os.environ.get('RT_TEST_VAR'), 'value': helper_mod.VALUE, 'prefix': sys.prefix,"
    " 'venv': os.environ.get('VIRTUAL_ENV'), 'path0': os.environ['PATH'].split(os.pathsep)[0],"
    " 'pid': os.getpid(), 'inputs': len(In), 'names': sorted(k for k in globals() if not k.startswith('_')),"
    " 'hist': str(get_ipython().history_manager.hist_file),"
    " 'saver': get_ipython().history_manager.save_thread is not None}))"
)


def test_prestarted_kernel_is_like_a_fresh_one(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = daemon_factory(config=PRESTARTED).start()
    install_spec(daemon, tmp_path, monkeypatch)
    wait_kernels(daemon)
    nb = notebook_dir(tmp_path)
    asyncio.run(_exercise_kernel(daemon, nb, expect_prestarted=True))
    # Refilled after the hand-out.
    wait_kernels(daemon)


async def _exercise_kernel(daemon: DaemonProcess, nb: Path, *, expect_prestarted: bool) -> None:
    """A kernel as a notebook front end uses it, then a restart: pre-started ones
    (``expect_prestarted``) restart into a pre-started kernel that takes the
    connection over, others into a kernel launched on the same ports."""
    env = {**os.environ, "JPY_SESSION_NAME": str(nb / "probe.ipynb"), "RT_TEST_VAR": "hello"}
    args = ["--HistoryManager.hist_file=:memory:"]
    async with running_kernel("rt", cwd=str(nb), env=env, extra_arguments=args) as (km, kc):
        await kc.wait_for_ready(timeout=60)
        kernel = km.provisioner.kernel
        assert kernel is not None and kernel.prestarted is expect_prestarted, kernel
        reply, out = await run_code(kc, PROBE)
        assert reply["status"] == "ok", reply
        assert reply["execution_count"] == 1  # nothing ran before the front end's first cell
        probe = json.loads(out)
        assert probe["cwd"] == str(nb)
        assert probe["session"] == str(nb / "probe.ipynb") and probe["var"] == "hello"
        assert probe["value"] == 42  # modules next to the notebook import
        env_path = probe["prefix"]
        assert env_path.startswith(str(daemon.cache_dir / "envs"))
        assert probe["venv"] == env_path and probe["path0"] == str(Path(env_path) / "bin")  # activated
        assert probe["inputs"] == 2  # In = ['', this cell]: no warm-up in history
        # --HistoryManager.hist_file=:memory: applied as at start-up: nothing writes to the file.
        assert probe["hist"] == ":memory:" and probe["saver"] is False
        assert not {"x", "helper_mod_value"} & set(probe["names"])
        first_pid = probe["pid"]
        assert first_pid == kernel.pid
        # The front end's channels on its manager's context (jupyter_server's) reconnect
        # ~10 ms after a restart drops them, not libzmq's 100-200 ms.
        channel = km.connect_shell()
        assert channel.getsockopt(zmq.RECONNECT_IVL) == RECONNECT_IVL_MS
        channel.close(linger=0)

        # Interrupt (SIGINT) stops a running cell.
        msg_id = kc.execute("import time; time.sleep(60)")
        await asyncio.sleep(1.0)
        await km.interrupt_kernel()
        while True:
            msg = await kc.get_shell_msg(timeout=30)
            if msg["parent_header"].get("msg_id") == msg_id:
                break
        assert msg["content"]["status"] == "error" and msg["content"]["ename"] == "KeyboardInterrupt"

        # Restart: a new process on the same ports and key; the open channels keep working.
        await run_code(kc, "x = 1")
        if expect_prestarted:
            await asyncio.to_thread(wait_kernels, daemon)  # the refill after the hand-out
        before = km.get_connection_info()
        await km.restart_kernel()
        after = km.get_connection_info()
        assert {k: after[k] for k in before} == before
        restarted = km.provisioner.kernel
        assert restarted is not None and restarted.prestarted is expect_prestarted, restarted
        await kc.wait_for_ready(timeout=60)
        reply, out = await run_code(kc, PROBE)
        assert reply["status"] == "ok" and reply["execution_count"] == 1
        probe = json.loads(out)
        assert probe["pid"] != first_pid
        # Ended (a zombie until the daemon, its parent, reaps it at its next watch tick).
        await asyncio.to_thread(wait_for, lambda: not psutil.pid_exists(first_pid), 10, 0.1, "the old kernel reaped")
        assert "x" not in probe["names"] and probe["cwd"] == str(nb)
        assert probe["session"] == str(nb / "probe.ipynb") and probe["var"] == "hello"
        assert probe["hist"] == ":memory:" and probe["saver"] is False  # the kernel arguments again
        second_env = probe["prefix"]
    # Both kernels' envs are deleted once their kernels are gone.
    for path in (env_path, second_env):
        wait_for(lambda p=path: not Path(p).exists(), timeout=30, what=f"{path} to be deleted")


def test_kernel_arguments_are_served_by_a_pre_imported_interpreter(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An argument a running kernel cannot apply: no pre-started kernel, but a
    pre-imported interpreter starts the kernel with it (not a whole new launch)."""
    daemon = daemon_factory(config=PRESTARTED).start()
    install_spec(daemon, tmp_path, monkeypatch)
    wait_kernels(daemon, preimported=1)
    nb = notebook_dir(tmp_path)

    async def run() -> None:
        env = {**os.environ, "JPY_SESSION_NAME": str(nb / "args.ipynb")}
        args = ["--InteractiveShell.autocall=2"]
        async with running_kernel("rt", cwd=str(nb), env=env, extra_arguments=args) as (km, kc):
            await kc.wait_for_ready(timeout=60)
            kernel = km.provisioner.kernel
            assert kernel is not None and not kernel.prestarted and "pre-imported" in kernel.reason, kernel
            assert "--InteractiveShell.autocall=2" in kernel.reason  # why the pre-started one could not
            code = "import json, os, helper_mod; print(json.dumps([get_ipython().autocall, os.getcwd(),"
            code += " os.environ['JPY_SESSION_NAME'], os.environ['VIRTUAL_ENV'], len(In)]))"
            reply, out = await run_code(kc, code)
            assert reply["execution_count"] == 1
            autocall, cwd, session, venv, inputs = json.loads(out)
            assert (autocall, cwd, session, inputs) == (2, str(nb), str(nb / "args.ipynb"), 2)
            assert venv == kernel.env.venv_path

    asyncio.run(run())
    # The pre-started kernel was left alone; the pre-imported one is replaced.
    assert daemon.status().pools["uv"].kernels.available == 1  # type: ignore[union-attr]
    wait_kernels(daemon, preimported=1)


def test_kernel_in_pooled_env_when_none_is_prestarted(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 2\n[daemon]\nlease_check_s = 0.3\n").start()
    install_spec(daemon, tmp_path, monkeypatch)
    daemon.wait_pool("uv", 2)  # one for the kernel, one for its restart
    asyncio.run(_exercise_kernel(daemon, notebook_dir(tmp_path), expect_prestarted=False))
    assert "launching a kernel in pooled env" in (daemon.cache_dir / "runtimed.log").read_text()


@pytest.mark.slow  # starts a kernel
def test_no_daemon_falls_back_to_the_kernelspec_argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    (tmp_path / "nodaemon").mkdir()
    daemon = DaemonProcess(tmp_path / "nodaemon")  # never started: its socket does not exist
    install_spec(daemon, tmp_path, monkeypatch)

    async def run() -> None:
        async with running_kernel("rt") as (km, kc):
            await kc.wait_for_ready(timeout=60)
            assert km.provisioner._local is not None
            _, out = await run_code(kc, "import sys; print(sys.executable)")
            assert out.strip() == sys.executable
            before = km.get_connection_info()
            await km.restart_kernel()
            assert km.get_connection_info() == before
            await kc.wait_for_ready(timeout=60)

    asyncio.run(run())


def test_a_stopped_daemon_is_passed_over_in_seconds(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon that accepts connections but never answers (SIGSTOP) must not hold the
    notebook for the take's long timeout: the kernelspec's argv is launched instead."""
    import time

    from runtimed.kernels.provisioner import RESPONSIVE_S

    daemon = daemon_factory(config="[backends.uv]\npool_size = 0\n").start()
    install_spec(daemon, tmp_path, monkeypatch)
    assert daemon.proc is not None
    os.kill(daemon.proc.pid, signal.SIGSTOP)

    async def run() -> float:
        began = time.monotonic()
        async with running_kernel("rt", now=True) as (km, kc):
            took = time.monotonic() - began  # start_kernel() and the channels
            await kc.wait_for_ready(timeout=60)
            assert km.provisioner._local is not None  # the kernelspec's own argv
        return took

    try:
        took = asyncio.run(run())
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)
    assert took < RESPONSIVE_S + 30  # not the take's timeout (wait_s + 120 s)


def test_owner_death_shuts_the_kernel_down_and_frees_its_env(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = daemon_factory(config=PRESTARTED + "kernel_owner_grace_s = 1\n").start()
    wait_kernels(daemon)
    import subprocess
    import sys

    # The owner: a process that takes a kernel and then dies by SIGKILL.
    code = (
        "import os, sys, time\n"
        "from runtimed.client import Client\n"
        "from runtimed.protocol.messages import TakeKernel\n"
        f"with Client({str(daemon.socket)!r}) as c:\n"
        "    k = c.take_kernel(TakeKernel(env_type='uv', env=dict(os.environ), owner_pid=os.getpid()))\n"
        "print(k.pid, k.env.venv_path, flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=daemon.env)
    assert owner.stdout is not None
    pid_text, env_path = owner.stdout.readline().split()
    kernel_pid = int(pid_text)
    assert psutil.pid_exists(kernel_pid)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    wait_for(lambda: not psutil.pid_exists(kernel_pid), timeout=30, what="the orphaned kernel to be shut down")
    wait_for(lambda: not Path(env_path).exists(), timeout=30, what="its env to be deleted")


def test_required_transport_encryption_launches_the_kernelspec_argv(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """runtimed's kernels do not do CURVE: with ``transport_encryption = "required"``
    the provisioner launches the kernelspec's own argv (as LocalProvisioner), which
    gets CURVE keys, even with a pre-started kernel ready."""
    import sys

    daemon = daemon_factory(config=PRESTARTED).start()
    install_spec(daemon, tmp_path, monkeypatch)
    spec_file = tmp_path / "jupyter" / "kernels" / "rt" / "kernel.json"
    spec = json.loads(spec_file.read_text())
    spec["metadata"]["supported_encryption"] = ["curve"]  # its ipykernel can (jupyter_client checks this)
    spec_file.write_text(json.dumps(spec))
    wait_kernels(daemon)

    async def run() -> None:
        async with running_kernel("rt", manager={"transport_encryption": "required"}) as (km, kc):
            await kc.wait_for_ready(timeout=60)
            assert km.provisioner._local is not None
            assert km.get_connection_info().get("curve_publickey")
            reply, out = await run_code(kc, "import sys; print(sys.executable)")
            assert reply["status"] == "ok" and out.strip() == sys.executable

    asyncio.run(run())
    kernels = daemon.status().pools["uv"].kernels
    assert kernels is not None and (kernels.available, kernels.handed_out) == (1, 0)  # the daemon was not used
