"""Benchmark: building envs with and without the shared bytecode store, side by side.

Run from the repository root:  python bench/env_build.py [--envs 4] [--backends uv,conda] [--kernels 3]

For each backend (uv with the uv cache UV_CACHE_DIR names, default the user's; conda
from the local test channel, tests/support/conda_channel.py) it builds ``--envs``
envs in-process exactly as a worker does (``runtimed.envs.build.build_env``), into two
temp trees laid out like the daemon's cache: one with sharing on (a
``<root>/bytecode`` store), one with sharing off (``bytecode_store=None``, what
``RUNTIMED_SHARE_BYTECODE=0`` gives the daemon). Builds alternate on/off (and
which goes first) so that load from other processes hits both alike. Env 1 of each tree warms the caches
(the package cache, and for "on" the store); envs 2.. are "warm".

Printed per backend and mode:
  * per-phase times (median over the warm envs): create (venv + install, or
    solve + install), bytecode link, compile, warm-up, the rest (package list,
    manifest), total;
  * disk: unique blocks each further env adds to its tree (every inode once;
    hardlinks into the package cache or the store are free), with directories
    and, as ``runtimed.envs.envdir.dir_size`` counts, files only;
  * kernel start from a warm env (to first reply), median of ``--kernels``
    starts alternating on/off.
Nothing is asserted; numbers are printed.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtimed.backend import Backend, BuildRequest
from runtimed.config import BackendConfig
from runtimed.envs.build import build_env
from runtimed.envs.envdir import dir_size
from runtimed.envs.plugins import load_backend
from tests.support.kernel import execute_in_kernel

MIB = 2**20
MODES = ("on", "off")


def unique_blocks(path: Path) -> int:
    """Bytes of blocks under ``path``: every inode (file or directory) once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def timed_build(backend: Backend, request: BuildRequest) -> dict[str, float]:
    """Build with ``build_env``, timing the backend's create and warm calls."""
    marks: dict[str, float] = {}
    create, warm = backend.create, backend.warm

    def timed_create(req: BuildRequest) -> None:
        t = time.monotonic()
        create(req)
        marks["create"] = time.monotonic() - t

    def timed_warm(req: BuildRequest) -> None:
        t = time.monotonic()
        warm(req)
        marks["warm"] = time.monotonic() - t

    backend.create, backend.warm = timed_create, timed_warm  # type: ignore[method-assign]
    try:
        started = time.monotonic()
        manifest = build_env(backend, request)
        total = time.monotonic() - started
    finally:
        backend.create, backend.warm = create, warm  # type: ignore[method-assign]
    bytecode: dict[str, Any] = manifest.details["bytecode"]  # type: ignore[assignment]
    t = bytecode["timings_s"]
    return {
        "create": marks["create"],
        "link": t["link"],
        "compile": t["compile"],
        "warmup": t["warmup"],
        "rest": total - marks["create"] - marks["warm"],
        "total": total,
        "shared": bytecode["shared"] + bytecode["compiled"],
        "per_env": bytecode["per_env"],
    }


def bench_backend(name: str, config: BackendConfig, args: argparse.Namespace, base: Path) -> None:
    backend = load_backend(name)
    roots = {mode: base / name / mode for mode in MODES}
    rows: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    sizes: dict[str, list[int]] = {mode: [unique_blocks(roots[mode])] for mode in MODES}
    file_sizes: dict[str, list[int]] = {mode: [0] for mode in MODES}
    envs: dict[str, list[Path]] = {mode: [] for mode in MODES}
    for i in range(args.envs):
        for mode in MODES if i % 2 == 0 else MODES[::-1]:  # neither mode always goes first
            root = roots[mode]
            path = root / "envs" / f"runtimed-{name}-{i}"
            path.parent.mkdir(parents=True, exist_ok=True)
            request = BuildRequest(
                env_id=str(i),
                path=path,
                config=config,
                cache_dir=root / "backends" / name,
                bytecode_store=root / "bytecode" if mode == "on" else None,
            )
            rows[mode].append(timed_build(backend, request))
            sizes[mode].append(unique_blocks(root))
            file_sizes[mode].append(dir_size(root))
            envs[mode].append(path)
            r = rows[mode][-1]
            print(
                f"  {name} sharing {mode:<3} env {i + 1}: total {r['total']:.2f}s (create {r['create']:.2f}, "
                f"link {r['link']:.2f}, compile {r['compile']:.2f}, warm-up {r['warmup']:.2f}, "
                f"rest {r['rest']:.2f}); .pyc shared {r['shared']:.0f}, per env {r['per_env']:.0f}",
                flush=True,
            )
    starts: dict[str, list[float]] = {mode: [] for mode in MODES}
    for i in range(max(1, args.kernels)):  # alternating, like the builds
        for mode in MODES if i % 2 == 0 else MODES[::-1]:
            python = str(backend.python_path(envs[mode][-1]))
            starts[mode].append(execute_in_kernel(python, "1+1")["startup_s"])
    kernels = {mode: statistics.median(starts[mode]) for mode in MODES}
    print(f"\n### {name} (median of envs 2..{args.envs}, warm caches)\n")
    print("| phase | sharing on | sharing off |\n|---|---|---|")
    for key, label in [
        ("create", "create (install)"),
        ("link", "bytecode: link from store"),
        ("compile", "bytecode: compile"),
        ("warmup", "warm-up import"),
        ("rest", "package list + manifest"),
        ("total", "**total**"),
    ]:
        on, off = (statistics.median(r[key] for r in rows[m][1:]) for m in MODES)
        print(f"| {label} | {on:.2f} s | {off:.2f} s |")
    first = {m: rows[m][0]["total"] for m in MODES}
    print(f"| first env (fills the store) | {first['on']:.2f} s | {first['off']:.2f} s |")
    for label, series in [("files and directories", sizes), ("files only, as `dir_size`", file_sizes)]:
        marg = {m: _marginal_mib(series[m]) for m in MODES}
        print(f"| disk per further env: {label} | {marg['on']:.1f} MiB | {marg['off']:.1f} MiB |")
    print(f"| kernel start (to first reply) | {kernels['on']:.2f} s | {kernels['off']:.2f} s |\n", flush=True)


def _marginal_mib(totals: list[int]) -> float:
    """Median growth of a tree per env after the first (``totals[0]`` is before any env)."""
    steps = [(b - a) / MIB for a, b in itertools.pairwise(totals[1:])]
    return statistics.median(steps) if steps else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", type=int, default=4, help="envs per backend and mode (the first warms caches)")
    parser.add_argument("--backends", default="uv,conda", help="comma-separated: uv, conda")
    parser.add_argument("--kernels", type=int, default=3, help="kernel starts per mode")
    parser.add_argument("--keep", type=Path, help="build under this (new) directory and keep it")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="runtimed-bench-build-"))
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # as a worker may have it: compilation is explicit
    print(f"root: {base}\ncpus: {os.cpu_count()}\nload: {os.getloadavg()[0]:.1f}\n")
    try:
        for name in args.backends.split(","):
            if name == "conda":
                from tests.support.conda_channel import build_channel

                config = BackendConfig(channels=[str(build_channel())])
            else:
                config = BackendConfig()
            bench_backend(name, config, args, base)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
