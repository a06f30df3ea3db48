"""Benchmark: how fast runtimed hands out a ready env, and what that saves a kernel.

Run from the repository root:  python bench/take_latency.py [--pool-size 3]

It starts a real daemon in a temp dir (uv backend; uv's cache is whatever
UV_CACHE_DIR says, default the user's), waits for the pool to fill, then measures:
  * ping round trip over the socket (NDJSON, one connection, many requests)
  * ping on a fresh connection (connect + ping + close), the floor for any request
  * take from a full pool on a fresh connection (connect + take + lease written without fsync + close),
    like a notebook would; side by side with the fresh-connection ping, in rounds
    (take the whole pool, let it refill, repeat) for ``--takes`` samples
  * building one env in-process (what a take saves)
  * starting a real Jupyter kernel from a pooled env and running 1+1
Nothing is asserted; numbers are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtimed.client import Client
from tests.support.daemon import DaemonProcess
from tests.support.kernel import execute_in_kernel


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool-size", type=int, default=3)
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--takes", type=int, default=15, help="takes measured (in rounds of --pool-size)")
    parser.add_argument("--take-only", action="store_true", help="skip the kernel start and in-process build")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runtimed-bench-") as tmp:
        daemon = DaemonProcess(Path(tmp), config=f"[backends.uv]\npool_size = {args.pool_size}\n")
        t0 = time.monotonic()
        daemon.start()
        print(f"daemon up (socket listening): {time.monotonic() - t0:.3f} s")
        try:
            daemon.wait_pool("uv", args.pool_size, timeout=600)
            fill = time.monotonic() - t0
            print(
                f"uv pool of {args.pool_size} filled from empty: {fill:.2f} s "
                f"({fill / args.pool_size:.2f} s/env, 1 at a time)"
            )

            with daemon.client() as c:
                times = []
                for _ in range(args.pings):
                    t = time.perf_counter()
                    c.ping()
                    times.append(time.perf_counter() - t)
            print(
                f"ping round trip: p50 {pct(times, 0.5) * 1e3:.3f} ms, "
                f"p99 {pct(times, 0.99) * 1e3:.3f} ms (n={args.pings})"
            )

            fresh_pings = []
            for _ in range(args.pings // 4):
                t = time.perf_counter()
                with Client(daemon.socket) as c:
                    c.ping()
                fresh_pings.append(time.perf_counter() - t)
            ping_p50 = pct(fresh_pings, 0.5)
            print(
                f"ping on a fresh connection (connect + ping + close): p50 {ping_p50 * 1e3:.3f} ms, "
                f"p99 {pct(fresh_pings, 0.99) * 1e3:.3f} ms (n={len(fresh_pings)})"
            )

            # Side by side: each take is preceded by fresh-connection pings in the same
            # conditions (the rebuilds that earlier takes started are running meanwhile).
            takes, envs, side_pings, settled = [], [], [], []
            while len(takes) < args.takes:
                daemon.wait_pool("uv", args.pool_size, timeout=600)
                settled_at = len(takes)  # the first take of a round finds the daemon idle
                for _ in range(min(args.pool_size, args.takes - len(takes))):
                    for _ in range(3):
                        t = time.perf_counter()
                        with Client(daemon.socket) as c:
                            c.ping()
                        side_pings.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    with Client(daemon.socket) as c:
                        env = c.take("uv")
                    takes.append(time.perf_counter() - t)
                    assert env is not None
                    envs.append(env)
                settled.append(takes[settled_at])
            print(
                f"ping on a fresh connection, interleaved with the takes: p50 {pct(side_pings, 0.5) * 1e3:.3f} ms "
                f"(n={len(side_pings)})"
            )
            take_p50 = pct(takes, 0.5)
            print(
                f"take on a fresh connection (connect + take + lease + close): p50 {take_p50 * 1e3:.3f} ms, "
                f"max {max(takes) * 1e3:.3f} ms (n={len(takes)})"
            )
            print(
                f"  of which the first of each round (no refill build running yet): "
                f"p50 {pct(settled, 0.5) * 1e3:.3f} ms (n={len(settled)}); the others run beside "
                f"the refill builds the earlier takes started"
            )
            print(f"take p50 / fresh-connection ping p50 (idle pool): {take_p50 / ping_p50:.2f}x")
            print(f"take p50 / interleaved fresh-connection ping p50: {take_p50 / pct(side_pings, 0.5):.2f}x")
            if args.take_only:
                return

            starts = [execute_in_kernel(e.python_path, "1+1")["startup_s"] for e in envs[:3]]
            print(f"kernel start from a pooled env (to first reply): median {statistics.median(starts):.3f} s")
        finally:
            daemon.stop()

        from runtimed.backend import BuildRequest
        from runtimed.config import BackendConfig
        from runtimed.envs.build import build_env
        from runtimed.envs.plugins import load_backend

        backend = load_backend("uv")
        t = time.monotonic()
        build_env(
            backend,
            BuildRequest(env_id="bench", path=Path(tmp) / "fresh", config=BackendConfig(), cache_dir=Path(tmp) / "bc"),
        )
        print(f"building one uv env instead (warm uv cache, incl. bytecode + warm-up): {time.monotonic() - t:.2f} s")


if __name__ == "__main__":
    main()
