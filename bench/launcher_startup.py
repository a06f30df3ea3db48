"""Benchmark: the argv launcher's own start-up, from spawn to its request on the socket.

Run from the repository root:  python bench/launcher_startup.py [--rounds 20]

A fake daemon (a Unix socket in a temp dir) times the arrival of the launcher's first
line (its ``ping``; the ``take_kernel`` follows in the same write burst) after the
launcher was spawned, for each way a kernelspec may run it, and for a bare
``python -I -S`` that connects and sends one line (the floor). Alternating rounds;
medians and minima printed. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = ROOT / "runtimed" / "envscripts" / "kernel_launcher.py"
FLOOR = "import socket, sys\ns = socket.socket(socket.AF_UNIX); s.connect(sys.argv[2]); s.sendall(b'{}\\n'); s.recv(1)"


def variants(python: str) -> dict[str, list[str]]:
    return {
        "floor: python -I -S, connect, send": [python, "-I", "-S", "-c", FLOOR],
        "launcher: python -I -S PATH (installed spec)": [python, "-I", "-S", str(LAUNCHER)],
        "launcher: python PATH": [python, str(LAUNCHER)],
        "launcher: python -m (shipped data file)": [python, "-m", "runtimed.envscripts.kernel_launcher"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sock_path = os.path.join(tmp, "d.sock")
        server = socket.socket(socket.AF_UNIX)
        server.bind(sock_path)
        server.listen(8)
        ports = {f"{c}_port": 40000 + i for i, c in enumerate(("shell", "iopub", "stdin", "control", "hb"))}
        connection_file = Path(tmp) / "kernel.json"
        connection_file.write_text(json.dumps({**ports, "key": "k", "ip": "127.0.0.1", "transport": "tcp"}))
        times: dict[str, list[float]] = {name: [] for name in variants(sys.executable)}
        for _ in range(args.rounds):
            for name, command in variants(sys.executable).items():
                started = time.perf_counter()
                proc = subprocess.Popen([*command, "--socket", sock_path, "-f", str(connection_file)], cwd=tmp,
                                        stderr=subprocess.DEVNULL)  # fmt: skip
                conn, _ = server.accept()
                data = b""
                while b"\n" not in data:
                    data += conn.recv(65536)
                times[name].append((time.perf_counter() - started) * 1e3)
                conn.close()
                proc.kill()
                proc.wait()
    for name, values in times.items():
        print(f"{name:<48} median {statistics.median(values):6.1f} ms   min {min(values):6.1f} ms")


if __name__ == "__main__":
    main()
