"""A Jupyter kernel that starts from the pool, through a real kernelspec and jupyter_client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jupyter_client.manager import KernelManager

from tests.support.daemon import DaemonProcess, runtimed_cmd, wait_for


def _run_kernel(kernel_name: str, code: str) -> str:
    km = KernelManager(kernel_name=kernel_name)
    km.start_kernel()
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        result: list[str] = []
        kc.execute_interactive(
            code,
            timeout=60,
            output_hook=lambda m: (
                result.append(m["content"]["data"]["text/plain"]) if m["msg_type"] == "execute_result" else None
            ),
        )
        kc.stop_channels()
        return result[0]
    finally:
        km.shutdown_kernel(now=True)


def test_kernelspec_starts_kernels_in_pooled_envs_and_frees_them(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\n[daemon]\nlease_check_s = 0.3\n").start()
    kernels = tmp_path / "jupyter" / "kernels"
    result = daemon.run_cli("kernel", "install", "--kernels-dir", str(kernels), "--socket", str(daemon.socket))
    assert result.returncode == 0, result.stderr
    spec = json.loads((kernels / "runtimed-uv" / "kernel.json").read_text())
    assert spec["argv"][-2:] == ["-f", "{connection_file}"]
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    daemon.wait_pool("uv", 1)

    prefix = _run_kernel("runtimed-uv", "import sys; sys.prefix")
    env_path = prefix.strip("'")
    assert env_path.startswith(str(daemon.cache_dir / "envs"))
    # The kernel held the lease; once it is gone the env is collected.
    wait_for(lambda: not Path(env_path).exists(), timeout=30, what="the kernel's env to be deleted")


@pytest.mark.slow  # starts a kernel
def test_kernel_falls_back_to_this_interpreter_without_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    kernels = tmp_path / "jupyter" / "kernels"
    subprocess.run(
        [*runtimed_cmd("kernel", "install", "--kernels-dir", str(kernels)), "--socket", str(tmp_path / "none.sock")],
        check=True,
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    assert _run_kernel("runtimed-uv", "import sys; sys.executable").strip("'") == sys.executable
