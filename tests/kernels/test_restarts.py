"""Quick restarts: a fallback to the kernelspec's argv (the pool ran dry) is not
remembered; once the pool is full again, a restart is served by runtimed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.kernels.test_provisioner import install_spec
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.kernel import run_code, running_kernel

CONFIG = "[backends.uv]\npool_size = 1\nkernels = 1\npreimported = 1\n"
PROBE = "import json, sys\nprint(json.dumps({'prefix': sys.prefix}))"


def _settled(daemon: DaemonProcess) -> bool:
    pool = daemon.status().pools["uv"]
    kernels = pool.kernels
    return pool.available >= 1 and kernels is not None and kernels.available >= 1 and kernels.preimported >= 1


def _no_wait(tmp_path: Path) -> None:
    """The kernelspec waits for no env: an empty pool means the argv at once."""
    spec_file = tmp_path / "jupyter" / "kernels" / "rt" / "kernel.json"
    spec: dict[str, Any] = json.loads(spec_file.read_text())
    spec["metadata"]["kernel_provisioner"]["config"]["wait_s"] = 0.0
    spec_file.write_text(json.dumps(spec))


async def _prefix(kc: Any) -> str:
    reply, out = await run_code(kc, PROBE)
    assert reply["status"] == "ok", reply
    prefix: str = json.loads(out)["prefix"]
    return prefix


@pytest.mark.slow
def test_restarts_return_to_runtimed_once_the_pool_is_full_again(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = daemon_factory(config=CONFIG).start()
    install_spec(daemon, tmp_path, monkeypatch)
    _no_wait(tmp_path)
    wait_for(lambda: _settled(daemon), timeout=180, what="a full pool")

    async def run() -> None:
        async with running_kernel("rt", now=True) as (km, kc):
            served = []
            for _ in range(20):  # quick restarts drain the pool: one falls back to the argv
                await km.restart_kernel(now=True)
                served.append(km.provisioner._local is None)
                if not served[-1]:
                    break
            assert served[0] and not served[-1], served
            await asyncio.to_thread(wait_for, lambda: _settled(daemon), 180, 0.1, "the pool to fill again")
            await km.restart_kernel(now=True)
            await kc.wait_for_ready(timeout=60)
            kernel = km.provisioner.kernel
            assert km.provisioner._local is None and kernel is not None, "the restart was not served by runtimed"
            assert await _prefix(kc) == kernel.env.venv_path

    asyncio.run(run())
