"""The daemon's builds share bytecode through ``<cache>/bytecode``, and its GC sweep collects it."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from runtimed.protocol.records import PoolStatus
from tests.support.daemon import DaemonProcess, wait_for

TAG = sys.implementation.cache_tag
KERNELAPP_PYC = f"ipykernel/__pycache__/kernelapp.{TAG}.pyc"
FAST_GC = "[daemon]\ngc_interval_s = 0.5\n"


def _pyc(env: Path) -> Path:
    return next(env.glob(f"lib/python*/site-packages/{KERNELAPP_PYC}"))


def test_pooled_envs_share_bytecode_and_the_sweep_collects_it(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 2\n" + FAST_GC).start()
    daemon.wait_pool("uv", 2, timeout=300)
    envs = sorted((daemon.cache_dir / "envs").glob("runtimed-uv-*"))
    assert len(envs) == 2
    store = daemon.cache_dir / "bytecode"
    entries = {p.stat().st_ino for p in store.rglob("*.pyc")}
    assert _pyc(envs[0]).stat().st_ino == _pyc(envs[1]).stat().st_ino
    assert _pyc(envs[0]).stat().st_ino in entries
    for env in envs:
        details = json.loads((env / ".runtimed" / "manifest.json").read_text())["details"]["bytecode"]
        assert details["mode"] == "shared", details
    assert entries  # still linked: the sweeps that ran meanwhile kept them

    daemon.write_config("[backends.uv]\npool_size = 0\n" + FAST_GC)
    daemon.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    wait_for(lambda: not list((daemon.cache_dir / "envs").glob("runtimed-uv-*")), timeout=60, what="envs deleted")
    wait_for(lambda: not list(store.rglob("*.pyc")), timeout=60, what="the store to be collected")
    assert "from the bytecode store" in daemon.log_path.read_text(errors="replace")


def test_a_damaged_store_entry_does_not_fail_the_builds_after_a_flush(daemon_factory: type[DaemonProcess]) -> None:
    """Issue 17: a store entry cut to 40 bytes, linked by an env still leased, made every build fail warm-up."""
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\nkernels = 0\n").start()
    daemon.wait_pool("uv", 1, timeout=300)
    with daemon.client() as client:
        taken = client.take("uv", keep=True)  # keeps the entries linked (st_nlink > 1), as a user's env does
    assert taken is not None
    init = next(Path(taken.venv_path).glob(f"lib/python*/site-packages/ipykernel/__pycache__/__init__.{TAG}.pyc"))
    [entry] = [p for p in (daemon.cache_dir / "bytecode").rglob("*.pyc") if p.stat().st_ino == init.stat().st_ino]
    entry.chmod(0o644)
    with open(entry, "r+b") as f:
        f.truncate(40)
    entry.chmod(0o444)
    with daemon.client() as client:
        client.flush("uv")

    def settled() -> PoolStatus | None:
        pool = daemon.status().pools["uv"]
        return pool if pool.available or pool.error else None

    pool = wait_for(settled, timeout=300, what="a new build to succeed or fail")
    assert pool is not None and pool.error is None and pool.available == 1
    new_env = next(p for p in (daemon.cache_dir / "envs").glob("runtimed-uv-*") if p != Path(taken.venv_path))
    assert _pyc(new_env).parent.joinpath(init.name).stat().st_ino != init.stat().st_ino
    log = daemon.log_path.read_text(errors="replace")
    assert "1 damaged entries removed and compiled afresh" in log
