"""Front ends whose environment or working directory has non-UTF-8 bytes (Python
holds them surrogate-escaped): the kernel gets the same bytes, from the pool."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest

from runtimed.protocol.messages import REPLY_TYPES, EnvReply, PooledEnv, decode_line, encode
from tests.kernels.test_provisioner import install_spec, wait_kernels
from tests.support.daemon import DaemonProcess, runtimed_cmd
from tests.support.kernel import run_code, running_kernel

PRESTARTED = "[backends.uv]\npool_size = 1\nkernels = 1\npreimported = 1\n"
BAD_VALUE = b"\xff\xfe"
BAD_DIR = b"caf\xe9-notebooks"
PROBE = "import json, os\nprint(json.dumps({'bad': os.environb.get(b'BAD', b'').hex(), 'cwd': os.getcwdb().hex()}))"


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


def test_a_reply_with_a_non_utf8_path_round_trips() -> None:
    path = os.fsdecode(b"/tmp/caf\xe9/cache/envs/runtimed-uv-1")
    reply = EnvReply(env=PooledEnv(env_type="uv", venv_path=path, python_path=path + "/bin/python", id="1"))
    line = encode(reply)
    line.decode("utf-8")  # still valid UTF-8 on the wire
    assert decode_line(line.rstrip(b"\n"), REPLY_TYPES) == reply


def test_run_refuses_a_non_utf8_cache_dir_at_once(tmp_path: Path) -> None:
    cache = os.fsencode(tmp_path) + b"/caf\xe9"
    env = {**os.environb, b"RUNTIMED_CACHE_DIR": cache, b"RUNTIMED_CONFIG": os.fsencode(tmp_path / "none.toml")}
    result = subprocess.run(runtimed_cmd("run"), env=env, capture_output=True, timeout=30)
    assert result.returncode == 2, result
    assert b"not valid UTF-8" in result.stderr
    assert not os.path.exists(cache)
