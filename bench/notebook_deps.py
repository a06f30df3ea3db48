"""Benchmark: a notebook that declares two small packages, to its kernel's first reply.

Run from the repository root:  python bench/notebook_deps.py [--rounds 3]

One run, a warm uv cache (the test suite's, or UV_CACHE_DIR). Times, from
``KernelManager.start_kernel()`` to the first ``kernel_info_reply`` (as
bench/kernel_start.py):
  * cold: the first open of a notebook whose set (``six``, ``idna`` plus a fresh
    version bound per round, so every round is a new set) is not warm: a base env
    gets the packages installed, then a kernel is launched in it;
  * warm: the second open of the same notebook, on a settled daemon: a kernel
    pre-started in an env of the set takes over the front end's connection;
  * project cold / warm: the same for a kernel started in a uv project's notebook
    directory (``pyproject.toml`` declaring the packages and ``attrs``), trusted
    with ``runtimed trust``: the first kernel of the project, then the second;
  * by hand: what a user does without runtimed, ``uv venv`` + ``uv pip install
    ipykernel`` and the packages + a kernel on that venv's python.
The notebook is named in the kernel's env (``JPY_SESSION_NAME``) and trusted through
``RUNTIMED_TRUST_FILE``. Nothing is asserted; medians are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nbformat
from jupyter_client.manager import AsyncKernelManager

from runtimed.deps import TrustStore, load_notebook_deps
from runtimed.kernels.specs import install, kernel_spec
from runtimed_uv.backend import find_uv
from tests.support.daemon import DaemonProcess, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kernel_start import first_reply, jupyter_dirs

WARM_SETS = 16  # a notebook's and a project's set per round: none evicted
CONFIG = f"[backends.uv]\npool_size = 2\nkernels = 1\nwarm_sets = {WARM_SETS}\n"


async def ready_s(kernel_name: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    km = AsyncKernelManager(kernel_name=kernel_name)
    t0 = time.perf_counter()
    await km.start_kernel(env=env or dict(os.environ), cwd=str(cwd or Path.cwd()))
    kc = km.client()
    kc.start_channels()
    try:
        await first_reply(kc)
        return time.perf_counter() - t0
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


def make_project(root: Path, packages: list[str], daemon: DaemonProcess) -> Path:
    """A trusted uv project (``pyproject.toml``) whose notebooks live in ``root/notebooks``."""
    (root / ".git").mkdir(parents=True)
    file = root / "pyproject.toml"
    file.write_text(f'[project]\nname = "demo"\nversion = "0"\ndependencies = {json.dumps(packages)}\n')
    approved = daemon.run_cli("trust", str(file))
    assert approved.returncode == 0, approved.stderr
    (root / "notebooks").mkdir()
    return root / "notebooks"


def settled(daemon: DaemonProcess, sets: int) -> bool:
    """The env pool full and a kernel pre-started in an env of the set (the
    set's warm env and kernel are made in the background after the first open):
    ``sets`` sets have one (each round is a new set; fewer than ``warm_sets``)."""
    pool = daemon.status().pools["uv"]
    return pool.available >= 2 and pool.kernels is not None and pool.kernels.package_sets >= sets


def by_hand(base: Path, packages: list[str], uv: str, env: dict[str, str]) -> float:
    """uv venv + uv pip install ipykernel and the packages + a kernel start."""
    venv = base / f"by-hand-{time.monotonic_ns()}"
    t0 = time.perf_counter()
    subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(venv)], check=True, env=env)
    python = str(venv / "bin" / "python")
    subprocess.run([uv, "pip", "install", "-q", "--python", python, "ipykernel", *packages], check=True, env=env)
    install(base / "jupyter" / "kernels", "by-hand", {"argv": [python, "-m", "ipykernel_launcher", "-f",
            "{connection_file}"], "display_name": "by hand", "language": "python"})  # fmt: skip
    return time.perf_counter() - t0 + asyncio.run(ready_s("by-hand"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    uv = find_uv()
    assert uv
    with tempfile.TemporaryDirectory(prefix="runtimed-nbbench-") as tmp:
        base = Path(tmp)
        uv_cache = os.environ.get("UV_CACHE_DIR") or str(Path.home() / ".cache" / "runtimed-tests" / "uv-cache")
        uv_env = {**os.environ, "UV_CACHE_DIR": uv_cache}
        trust_file = str(base / "trust.json")
        daemon = DaemonProcess(base, config=CONFIG, env={"UV_CACHE_DIR": uv_cache, "RUNTIMED_TRUST_FILE": trust_file})
        install(base / "jupyter" / "kernels", "rt", kernel_spec("uv", "rt", str(daemon.socket)))
        os.environ.update(jupyter_dirs(base), RUNTIMED_CONFIG=str(daemon.config_file), RUNTIMED_TRUST_FILE=trust_file)
        daemon.start()
        try:
            wait_for(lambda: daemon.status().pools["uv"].available >= 2, 600, what="the env pool")
            times: dict[str, list[float]] = {"cold": [], "warm": [], "by hand": [], "project cold": [],
                                             "project warm": []}  # fmt: skip
            for n in range(args.rounds):
                packages = ["six", f"idna>=3.{n}"]  # a new set each round
                path = base / f"nb{n}.ipynb"
                nb = nbformat.v4.new_notebook()
                nb.metadata["runt"] = {"uv": {"dependencies": packages}}
                nbformat.write(nb, path)
                spec = load_notebook_deps(path).spec
                assert spec is not None
                TrustStore().approve(spec, path)
                env = {**os.environ, "JPY_SESSION_NAME": str(path)}
                times["cold"].append(asyncio.run(ready_s("rt", env)))
                wait_for(functools.partial(settled, daemon, min(2 * n + 1, WARM_SETS)), 600, what="a settled daemon")
                times["warm"].append(asyncio.run(ready_s("rt", env)))
                times["by hand"].append(by_hand(base, packages, uv, uv_env))
                project = make_project(base / f"project{n}", [*packages, "attrs"], daemon)
                times["project cold"].append(asyncio.run(ready_s("rt", cwd=project)))
                wait_for(functools.partial(settled, daemon, min(2 * n + 2, WARM_SETS)), 600, what="a settled daemon")
                times["project warm"].append(asyncio.run(ready_s("rt", cwd=project)))
            print("\nstart_kernel() -> first kernel_info_reply, a notebook needing six and idna (a project: and attrs)")
            for name, values in times.items():
                ms = ", ".join(f"{t * 1e3:.0f}" for t in values)
                print(f"  {name:<12} median {statistics.median(values) * 1e3:7.0f} ms   ({ms})")
            print("\n" + json.dumps(times))
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
