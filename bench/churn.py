"""Benchmark: disk use over a churn of take/release cycles stays flat.

Run from the repository root:  python bench/churn.py [--cycles 200] [--pool-size 3] [--backend uv]

Starts a real daemon in a temp dir, then repeats: take an env (waiting for one if
needed), check its python exists, release it. Every --every cycles it prints the
bytes under envs/ and trash/ (hardlinked inodes counted once) and the number of env
dirs. With a bounded pool, both must stay flat however many cycles run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtimed.envs.envdir import dir_size
from tests.support.daemon import DaemonProcess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--pool-size", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--backend", default="uv")
    parser.add_argument("--every", type=int, default=20)
    args = parser.parse_args()
    config = f"[backends.{args.backend}]\npool_size = {args.pool_size}\nconcurrency = {args.concurrency}\n"
    with tempfile.TemporaryDirectory(prefix="runtimed-churn-") as tmp:
        daemon = DaemonProcess(Path(tmp), config=config)
        daemon.start()
        try:
            daemon.wait_pool(args.backend, args.pool_size, timeout=900)
            envs, trash = daemon.cache_dir / "envs", daemon.cache_dir / "trash"
            print(f"{'cycle':>6} {'env dirs':>8} {'envs+trash MiB':>15} {'elapsed s':>10}", flush=True)
            started = time.monotonic()
            peak = 0
            with daemon.client() as client:
                for cycle in range(1, args.cycles + 1):
                    env = client.take(args.backend, wait_s=300)
                    assert env is not None, "pool stayed empty"
                    assert os.path.exists(env.python_path)
                    client.release(env.venv_path)
                    if cycle % args.every == 0 or cycle == 1:
                        used = dir_size(envs) + dir_size(trash)
                        peak = max(peak, used)
                        count = len(os.listdir(envs))
                        print(f"{cycle:>6} {count:>8} {used / 2**20:>15.1f} {time.monotonic() - started:>10.1f}",
                              flush=True)  # fmt: skip
            daemon.wait_pool(args.backend, args.pool_size, timeout=900)
            time.sleep(1)
            final = dir_size(envs) + dir_size(trash)
            print(
                f"after refill: {len(os.listdir(envs))} env dirs, {final / 2**20:.1f} MiB; peak {peak / 2**20:.1f} MiB"
            )
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
