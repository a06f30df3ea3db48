"""Benchmark: ``take --with`` on a cold set of extras, then on the same set from its warm set.

Run from the repository root:  python bench/take_with.py [--with six --with idna]

Starts a daemon in a temp dir (uv pool of 1, no kernels) with the uv cache that
UV_CACHE_DIR names (default: the test suite's, warm), waits for one base env, then
times two takes of the same set through the client (connect to reply): the first
installs the set into a base env (offline first, compile, warm-up), the second is
served from the set's warm env. Prints both, with the set's hits and installs.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtimed.client import Client
from runtimed.protocol.messages import WarmSetStatus
from runtimed.util.paths import Paths
from tests.support.conda_channel import test_cache_root

CONFIG = "[backends.uv]\npool_size = 1\nkernels = 0\n[backends.conda]\npool_size = 0\nkernels = 0\n"


def _wait(check: object, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def _warm_set(socket: Path) -> WarmSetStatus | None:
    with Client(socket) as client:
        sets = client.status().pools["uv"].warm_sets
    return sets[0] if sets else None


def _available(socket: Path) -> int:
    with Client(socket) as client:
        return client.status().pools["uv"].available


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with", dest="packages", action="append", default=None, metavar="PKG")
    packages = parser.parse_args().packages or ["six", "idna"]
    base = Path(tempfile.mkdtemp(prefix="bench-take-with-"))
    (base / "config.toml").write_text(CONFIG)
    env = {
        **os.environ,
        "RUNTIMED_CACHE_DIR": str(base / "cache"),
        "RUNTIMED_CONFIG": str(base / "config.toml"),
        "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(test_cache_root() / "uv-cache")),
    }
    socket = Paths.resolve(cache_dir=base / "cache", config_file=base / "config.toml").socket
    with open(base / "daemon.out", "w") as out:
        daemon = subprocess.Popen([sys.executable, "-m", "runtimed", "run"], env=env, stdout=out, stderr=out)
    try:
        _wait(lambda: _available(socket) >= 1, "a base env")
        times = []
        for _ in range(2):
            started = time.perf_counter()
            with Client(socket) as client:
                client.take("uv", packages=packages)
            times.append(time.perf_counter() - started)
            _wait(lambda: (s := _warm_set(socket)) is not None and bool(s.ready) and not s.installing, "a warm env")
        warm = _warm_set(socket)
        assert warm is not None
        print(f"take --with {' '.join(packages)}")
        print(f"  cold set : {times[0] * 1000:8.1f} ms")
        print(f"  warm set : {times[1] * 1000:8.1f} ms   (hits {warm.hits}, installs {warm.installs})")
    finally:
        daemon.terminate()
        daemon.wait(30)


if __name__ == "__main__":
    main()
