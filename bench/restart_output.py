"""Benchmark: is a restart's first output lost on a websocket held open through it?

Run from the repository root:  python bench/restart_output.py [--restarts 30] [--load 0]

A real jupyter_server per kernelspec (python3: the plain ipykernel kernelspec;
prestarted: runtimed's, served by pre-started kernels). For each, one notebook
session and one kernel websocket, kept open; then ``--restarts`` times:
``POST /api/kernels/ID/restart``, and at once one ``execute_request`` (``print``)
on that websocket. Its output is lost when the server's iopub socket under the
websocket (which reconnects on its own timer) was not back when the new kernel
published it: no ``idle`` within 5 s counts as lost, and the websocket is then
nudged until it answers again (as JupyterLab makes sure, by reconnecting).
``--load N`` runs N busy processes meanwhile (the test suite's CI runs 2 cores full).
Prints the count lost per kernelspec. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.daemon import DaemonProcess
from tests.support.jupyter_server import JupyterServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kernel_start import jupyter_dirs, wait_prestarted, write_specs

SPECS = ("python3", "prestarted")
LOST_AFTER_S = 5.0


def lost_outputs(server: JupyterServer, name: str, daemon: DaemonProcess, restarts: int) -> int:
    """How many of ``restarts`` restarts lost the first request's output."""
    session = server.request("POST", "/api/sessions", {"path": f"{name}.ipynb", "type": "notebook",
                                                       "kernel": {"name": name}})  # fmt: skip
    kernel_id = session["kernel"]["id"]
    ws = server.kernel_socket(kernel_id)
    lost = 0
    try:
        ws.first_output()
        for _ in range(restarts):
            if name == "prestarted":
                wait_prestarted(daemon)  # a pre-started kernel serves each restart
            server.request("POST", f"/api/kernels/{kernel_id}/restart")
            try:
                ws.execute("print(1)", timeout=LOST_AFTER_S)
            except TimeoutError:
                lost += 1
                ws.nudge()
    finally:
        ws.close()
        server.request("DELETE", f"/api/sessions/{session['id']}")
    return lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--restarts", type=int, default=30)
    parser.add_argument("--load", type=int, default=0, help="busy processes running meanwhile")
    args = parser.parse_args()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    try:
        with tempfile.TemporaryDirectory(prefix="runtimed-rbench-") as tmp:
            base = Path(tmp)
            daemon = DaemonProcess(base, config="[backends.uv]\npool_size = 2\nkernels = 1\n")
            write_specs(base / "jupyter" / "kernels", str(daemon.socket))
            os.environ.update(jupyter_dirs(base))
            daemon.start()
            try:
                print("waiting for the pool and a pre-started kernel ...", flush=True)
                wait_prestarted(daemon)
                for name in SPECS:
                    root = base / f"root-{name}"
                    root.mkdir()
                    server = JupyterServer(root, dict(os.environ)).start()
                    try:
                        lost = lost_outputs(server, name, daemon, args.restarts)
                    finally:
                        server.stop()
                    print(f"{name:<11} first output lost in {lost} of {args.restarts} restarts "
                          f"({args.load} busy processes)", flush=True)  # fmt: skip
            finally:
                daemon.stop()
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
