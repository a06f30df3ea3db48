"""Benchmark: the kernel that triggers an auto-start - launch its argv at once, or wait?

Run from the repository root:  python bench/autostart.py [--rounds 3]

"Ready" is from ``KernelManager.start_kernel()`` to the first ``kernel_info_reply``
(the client nudging with ``kernel_info`` every 50 ms), as in bench/kernel_start.py.
With no daemon running, each round times, alternating:
  * python3      - the plain ipykernel kernelspec (no runtimed at all)
  * fallback     - runtimed-provisioner, auto_start_wait_s = 0: a daemon is started in
                   the background and the kernelspec's argv is launched at once (a)
  * second       - the next kernel after "fallback", once the new daemon has a
                   pre-started kernel ready (what auto-start is for)
  * wait-cold    - auto_start_wait_s = 60, empty cache dir: the kernel waits for the
                   new daemon to build an env and start a kernel (b, first use)
  * wait-warm    - auto_start_wait_s = 60, pooled envs already on disk from an earlier
                   daemon (b, e.g. after a reboot)
Every round uses fresh temp cache dirs (uv backend, pool_size 2, kernels 1; the uv
cache of the test suite if present) and stops every daemon it started. Nothing is
asserted; medians are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_client.manager import AsyncKernelManager

from runtimed.client import Client
from runtimed.kernels.specs import install, kernel_spec

SCENARIOS = ("python3", "fallback", "second", "wait-cold", "wait-warm")
CONFIG = "[backends.uv]\npool_size = 2\nkernels = 1\n[backends.conda]\npool_size = 0\n"


async def time_to_ready(name: str) -> tuple[float, str]:
    """Seconds to the first kernel_info_reply, and how the provisioner served it."""
    km = AsyncKernelManager(kernel_name=name)
    t0 = time.perf_counter()
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        while True:
            kc.kernel_info()
            try:
                reply = await kc.get_shell_msg(timeout=0.05)
            except Exception:
                continue
            if reply["msg_type"] == "kernel_info_reply":
                elapsed = time.perf_counter() - t0
                break
        kernel = getattr(km.provisioner, "kernel", None)
        how = "argv" if kernel is None else ("prestarted" if kernel.prestarted else "pooled env")
        return elapsed, how
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


def use_cache(cache: Path) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    (cache.parent / "config.toml").write_text(CONFIG)
    os.environ["RUNTIMED_CACHE_DIR"] = str(cache)
    os.environ["RUNTIMED_CONFIG"] = str(cache.parent / "config.toml")


def stop_daemon() -> None:
    subprocess.run([sys.executable, "-m", "runtimed.cli", "stop"], capture_output=True, check=False)


def wait_status(check: str, timeout: float = 600) -> None:
    """Until the daemon (env paths) has a pre-started kernel (``kernel``) or a full pool (``pool``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with Client() as c:
                pool = c.status().pools["uv"]
            if check == "kernel" and pool.kernels is not None and pool.kernels.available >= 1:
                return
            if check == "pool" and pool.available >= pool.target:
                return
        except (ConnectionError, KeyError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"daemon never got its {check}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runtimed-asbench-") as tmp:
        base = Path(tmp)
        uv_cache = Path.home() / ".cache" / "runtimed-tests" / "uv-cache"
        if uv_cache.is_dir() and "UV_CACHE_DIR" not in os.environ:
            os.environ["UV_CACHE_DIR"] = str(uv_cache)
        kernels = base / "jupyter" / "kernels"
        plain = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                 "display_name": "Python 3", "language": "python"}  # fmt: skip
        install(kernels, "python3", plain)
        for name, wait in (("rt-fallback", 0.0), ("rt-wait", 60.0)):
            spec = kernel_spec("uv", name)
            spec["metadata"]["kernel_provisioner"]["config"]["auto_start_wait_s"] = wait  # type: ignore[index]
            install(kernels, name, spec)
        os.environ.update(JUPYTER_PATH=str(base / "jupyter"), JUPYTER_DATA_DIR=str(base / "jdata"),
                          JUPYTER_RUNTIME_DIR=str(base / "jrt"), RUNTIMED_AUTO_START="1")  # fmt: skip
        os.environ.pop("RUNTIMED_SOCKET", None)
        times: dict[str, list[float]] = {k: [] for k in SCENARIOS}
        served: dict[str, list[str]] = {k: [] for k in SCENARIOS}

        def record(scenario: str, result: tuple[float, str]) -> None:
            times[scenario].append(result[0])
            served[scenario].append(result[1])
            print(f"  {scenario:<10} {result[0] * 1e3:7.0f} ms  ({result[1]})", flush=True)

        for r in range(args.rounds):
            print(f"round {r + 1}", flush=True)
            record("python3", asyncio.run(time_to_ready("python3")))
            try:
                use_cache(base / f"a{r}" / "cache")
                record("fallback", asyncio.run(time_to_ready("rt-fallback")))
                wait_status("kernel")
                record("second", asyncio.run(time_to_ready("rt-fallback")))
                wait_status("pool")  # leave pooled envs on disk for wait-warm
            finally:
                stop_daemon()
            try:
                use_cache(base / f"b{r}" / "cache")
                record("wait-cold", asyncio.run(time_to_ready("rt-wait")))
            finally:
                stop_daemon()
            try:
                use_cache(base / f"a{r}" / "cache")  # envs on disk, no daemon
                record("wait-warm", asyncio.run(time_to_ready("rt-wait")))
            finally:
                stop_daemon()
        print("\nKernelManager.start_kernel() -> first kernel_info_reply, no daemon running at the start")
        for name in SCENARIOS:
            ms = ", ".join(f"{t * 1e3:.0f}" for t in times[name])
            print(f"  {name:<10} median {statistics.median(times[name]) * 1e3:7.0f} ms   ({ms})  {served[name]}")
        print("\n" + json.dumps({"times": times, "served": served}))


if __name__ == "__main__":
    main()
