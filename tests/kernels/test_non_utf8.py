"""Front ends whose environment or working directory has non-UTF-8 bytes (Python
holds them surrogate-escaped): the kernel gets the same bytes, from the pool."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from tests.kernels.test_provisioner import install_spec, wait_kernels
from tests.support.daemon import DaemonProcess
from tests.support.kernel import run_code, running_kernel

PRESTARTED = "[backends.uv]\npool_size = 1\nkernels = 1\npreimported = 1\n"
BAD_VALUE = b"\xff\xfe"
BAD_DIR = b"caf\xe9-notebooks"
PROBE = (
    "import json, os\n"
    "print(json.dumps({'bad': os.environb.get(b'BAD', b'').hex(), 'cwd': os.getcwdb().hex()}))"
)


@pytest.mark.slow
@pytest.mark.parametrize("restart", [False, True], ids=["prestarted", "restart"])
def test_non_utf8_environment_and_cwd_reach_a_pooled_kernel(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restart: bool
) -> None:
    daemon = daemon_factory(config=PRESTARTED).start()
    install_spec(daemon, tmp_path, monkeypatch)
    wait_kernels(daemon, preimported=1)
    cwd = os.fsencode(tmp_path) + b"/" + BAD_DIR
    os.mkdir(cwd)
    env = {**os.environ, "BAD": os.fsdecode(BAD_VALUE)}

    async def run() -> dict[str, str]:
        async with running_kernel("rt", cwd=os.fsdecode(cwd), env=env) as (km, kc):
            if restart:  # a restart pins the connection: another way through the daemon
                await km.restart_kernel(now=True)
            await kc.wait_for_ready(timeout=60)
            assert km.provisioner._local is None and km.provisioner.kernel is not None  # served by runtimed
            reply, out = await run_code(kc, PROBE)
            assert reply["status"] == "ok", reply
            seen: dict[str, str] = json.loads(out)
            return seen

    seen = asyncio.run(run())
    assert bytes.fromhex(seen["bad"]) == BAD_VALUE
    assert bytes.fromhex(seen["cwd"]) == os.path.realpath(cwd)
