"""Conda kernels run activated: a pre-started and a launched kernel from the local channel.

The activation variables come from the conda backend (py-rattler's activation API),
recorded in the env's manifest; the kernel's ``os.environ`` must carry them, with
the env's ``bin`` first on ``PATH``, whichever way the kernel was started.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import psutil
import pytest
from jupyter_client.blocking import BlockingKernelClient

from runtimed.envs.envdir import read_manifest
from runtimed.protocol.messages import LaunchedKernel, TakeKernel
from tests.support.conda_channel import build_channel
from tests.support.daemon import DaemonProcess, wait_for

PROBE = (
    "import json, os, sys; print(json.dumps({'environ': dict(os.environ), 'prefix': sys.prefix,"
    " 'executable': sys.executable}))"
)


@pytest.fixture(scope="module")
def channel() -> Path:
    return build_channel()


def _probe(kernel: LaunchedKernel) -> dict[str, Any]:
    client = BlockingKernelClient()
    client.load_connection_info(kernel.connection)
    client.start_channels()
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])

    try:
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive(PROBE, timeout=60, output_hook=hook)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
    data: dict[str, Any] = json.loads("".join(out))
    return data


def test_conda_kernels_run_with_the_env_activated(daemon_factory: type[DaemonProcess], channel: Path) -> None:
    config = (
        f"[backends.conda]\npool_size = 2\nkernels = 1\nchannels = [{json.dumps(str(channel))}]\n"
        "[backends.uv]\npool_size = 0\n"
    )
    daemon = daemon_factory(config=config).start()

    def kernel_ready() -> bool:
        kernels = daemon.status().pools["conda"].kernels
        return kernels is not None and kernels.available == 1

    wait_for(kernel_ready, timeout=300, what="a pre-started conda kernel")
    daemon.wait_pool("conda", 1, timeout=300)
    # The front end's environment, as a conda-unaware Jupyter server would pass it.
    front_env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA", "VIRTUAL_ENV"))}
    kernels: list[LaunchedKernel] = []
    try:
        with daemon.client() as c:
            for prestarted in (True, False):
                request = TakeKernel(env_type="conda", env=front_env, owner_pid=os.getpid(), prestarted=prestarted)
                kernel = c.take_kernel(request)
                assert kernel is not None and kernel.prestarted is prestarted
                kernels.append(kernel)
        for kernel in kernels:
            prefix = Path(kernel.env.venv_path)
            manifest = read_manifest(prefix)
            assert manifest is not None and manifest.env_type == "conda"
            assert manifest.activation.get("CONDA_PREFIX") == str(prefix)
            seen = _probe(kernel)
            environ = seen["environ"]
            assert Path(seen["prefix"]) == prefix and Path(seen["executable"]).is_relative_to(prefix)
            assert environ["CONDA_PREFIX"] == str(prefix)
            assert environ["PATH"].split(os.pathsep)[0] == str(prefix / "bin")
            assert environ["PATH"].endswith(front_env["PATH"])  # the front end's PATH is kept after it
            for name, value in manifest.activation.items():
                if name != "PATH":
                    assert environ.get(name) == value, name
    finally:
        for kernel in kernels:
            if psutil.pid_exists(kernel.pid):
                os.kill(kernel.pid, signal.SIGTERM)
        for kernel in kernels:
            wait_for(lambda: not Path(kernel.env.venv_path).exists(), timeout=60, what="the kernel's env deleted")  # noqa: B023
