"""Benchmark: building conda envs with the conda backend (py-rattler), and their disk use.

Run from the repository root:  python bench/conda_env.py [--envs 3] [--channel CHANNEL] [--keep DIR]

By default the channel is the local test channel (tests/support/conda_channel.py:
this machine's CPython repackaged, plus ipykernel/ipywidgets and dependencies as
conda packages), built once and cached. In a fresh temp dir laid out like the
daemon's cache (``backends/conda`` next to ``envs/``, same file system) it builds
``--envs`` envs in-process, one after the other, exactly as a worker would
(``runtimed.envs.build.build_env``), sharing bytecode through ``<root>/bytecode``
unless RUNTIMED_SHARE_BYTECODE=0 (``bench/env_build.py`` compares both):

  * env 1 with a cold package cache (and no repodata cache), env 2.. with a warm one;
  * per env: wall time and the backend's phases (solve, install, compile, warm-up);
  * disk: ``du -sh`` of one env, its unique bytes (hardlinks counted once:
    ``runtimed.envs.envdir.dir_size``), the package cache, and the marginal bytes each
    further env adds to cache + envs;
  * a real kernel started from the last env (start-up to first reply, ``1+1``).
Nothing is asserted; numbers are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtimed.backend import BuildRequest
from runtimed.config import BackendConfig
from runtimed.envs.build import build_env
from runtimed.envs.bytecode_store import store_for_build
from runtimed.envs.envdir import dir_size
from runtimed_conda import CondaBackend
from tests.support.conda_channel import build_channel
from tests.support.kernel import execute_in_kernel

MIB = 2**20


def du_sh(*paths: Path) -> str:
    """``du -sh`` (GNU du counts a hardlinked inode once per invocation)."""
    out = subprocess.run(["du", "-sch", *map(str, paths)], capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1].split()[0]


def count_files(path: Path, suffix: str) -> int:
    return sum(1 for _ in path.rglob(f"*{suffix}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", type=int, default=3, help="envs to build (the first with a cold cache)")
    parser.add_argument("--channel", help="conda channel (default: the local test channel)")
    parser.add_argument("--keep", type=Path, help="build under this (new) directory and keep it")
    args = parser.parse_args()

    channel = args.channel or str(build_channel())
    root = args.keep or Path(tempfile.mkdtemp(prefix="runtimed-bench-conda-"))
    root.mkdir(parents=True, exist_ok=True)
    cache, envs = root / "backends" / "conda", root / "envs"
    envs.mkdir(exist_ok=True)
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # as a worker may have it: compilation is explicit
    backend = CondaBackend()
    config = BackendConfig(channels=[channel])
    print(f"channel: {channel}\nroot:    {root}\ncpus:    {os.cpu_count()}\n")
    print(f"{'env':<6}{'cache':<7}{'total':>8}{'solve':>8}{'install':>9}{'compile':>9}{'warm-up':>9}   repodata")
    built: list[Path] = []
    totals: list[int] = []
    try:
        for i in range(args.envs):
            path = envs / f"runtimed-conda-bench{i}"
            started = time.monotonic()
            request = BuildRequest(
                env_id=f"bench{i}", path=path, config=config, cache_dir=cache, bytecode_store=store_for_build(root)
            )
            manifest = build_env(backend, request)
            wall = time.monotonic() - started
            t = {**manifest.details["timings_s"], **manifest.details["bytecode"]["timings_s"]}  # type: ignore[dict-item]
            print(
                f"{i + 1:<6}{'cold' if i == 0 else 'warm':<7}{wall:>7.2f}s{t['solve']:>7.2f}s{t['install']:>8.2f}s"
                f"{t['compile']:>8.2f}s{t['warmup']:>8.2f}s   {manifest.details['repodata']}"
            )
            built.append(path)
            totals.append(dir_size(root))

        first = built[0]
        records = len(read_records(first))
        pyc = count_files(first, ".pyc")
        print(f"\none env: {records} conda packages, {pyc} .pyc files")
        print(f"  du -sh env:                     {du_sh(first)}")
        print(f"  unique bytes in env (dir_size): {dir_size(first) / MIB:.1f} MiB  (hardlinks counted once)")
        print(f"  package cache (pkgs/):          {dir_size(cache / 'pkgs') / MIB:.1f} MiB")
        print(f"  repodata cache:                 {dir_size(cache / 'repodata') / MIB:.2f} MiB")
        print(f"  du -sh all {len(built)} envs together:    {du_sh(*built)}")
        print(f"  cache + envs, after env 1:      {totals[0] / MIB:.1f} MiB")
        for i in range(1, len(totals)):
            print(f"  marginal bytes of env {i + 1}:       {(totals[i] - totals[i - 1]) / MIB:.1f} MiB")
        if len(built) > 1:
            unique = unique_bytes(built[-1])
            print(f"  of which files not hardlinked:  {unique[0] / MIB:.1f} MiB .pyc, {unique[1] / MIB:.1f} MiB other")

        kernel = execute_in_kernel(str(backend.python_path(built[-1])), "1+1")
        startup, result = kernel["startup_s"], kernel["result"]
        print(f"\nkernel from env {len(built)}: first reply after {startup:.2f}s, 1+1 -> {result}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


def read_records(prefix: Path) -> list[Path]:
    return list((prefix / "conda-meta").glob("*.json"))


def unique_bytes(path: Path) -> tuple[int, int]:
    """Bytes of files with a single link (not shared with the package cache): .pyc, other."""
    pyc = other = 0
    for file in path.rglob("*"):
        st = file.lstat()
        if file.is_file() and not file.is_symlink() and st.st_nlink == 1:
            if file.suffix == ".pyc":
                pyc += st.st_blocks * 512
            else:
                other += st.st_blocks * 512
    return pyc, other


if __name__ == "__main__":
    main()
