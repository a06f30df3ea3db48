"""Benchmark: time to a ready Jupyter kernel, plain python3 vs runtimed.

Run from the repository root:  python bench/kernel_start.py [--rounds 7] [--no-server]

"Ready" is from ``KernelManager.start_kernel()`` to the first ``kernel_info_reply``,
the client nudging with ``kernel_info`` requests as front ends do (not
``wait_for_ready()``, whose iopub flush alone waits 0.2 s). In one run, alternating
round by round, it times three kernelspecs:
  * python3     - the plain ipykernel kernelspec (this interpreter)
  * pooled      - runtimed-provisioner, a fresh kernel in a pooled env (prestarted = false)
  * prestarted  - runtimed-provisioner, a pre-started kernel
then, for each, a restart on a settled daemon (``restart_kernel()`` to the first
reply, same ports), seen by ``km.client()`` (a zmq context of its own) and by a
client on the kernel manager's context (as jupyter_server opens its channels), and
the same three through a real jupyter_server: ``POST /api/sessions`` to the first
output of ``print`` over the kernel websocket. Then a jupyter_server restart
(``POST /api/kernels/ID/restart`` to the first output over the websocket opened
before it; python3 and prestarted, each in a server of its own). Then a
jupyter_server whose ``JUPYTER_CONFIG_DIR`` differs from the daemon's (python3 and
prestarted; its first open, which teaches the daemon the server's start-up
variables, is reported apart). Before each round it waits for the daemon to
settle (env pool full, nothing building, kernel ready): a refill is not what is measured.
It starts a real daemon in a temp dir (uv backend; UV_CACHE_DIR as set). Nothing is
asserted; medians and ratios are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.connect import write_connection_file
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.session import Session

from runtimed.kernels.specs import install, kernel_spec
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.jupyter_server import JupyterServer

SPECS = ("python3", "pooled", "prestarted")


def jupyter_dirs(base: Path) -> dict[str, str]:
    """Jupyter's kernelspec path, data and runtime dirs, all inside ``base`` (none of the user's)."""
    return {"JUPYTER_PATH": str(base / "jupyter"), "JUPYTER_DATA_DIR": str(base / "jdata"),
            "JUPYTER_RUNTIME_DIR": str(base / "jrt")}  # fmt: skip


def write_specs(kernels: Path, socket: str) -> None:
    install(
        kernels,
        "python3",
        {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
         "display_name": "Python 3", "language": "python"},
    )  # fmt: skip
    for name, prestarted in (("pooled", False), ("prestarted", True)):
        spec = kernel_spec("uv", name, socket)
        spec["metadata"]["kernel_provisioner"]["config"]["prestarted"] = prestarted  # type: ignore[index]
        install(kernels, name, spec)


async def time_to_ready(name: str, daemon: DaemonProcess) -> tuple[float, float, float]:
    """Seconds to ready from ``start_kernel()``, then, once the daemon has settled
    again, from ``restart_kernel()`` (as a front end restarts: a shutdown request,
    then a new kernel on the same ports) twice: seen by a client of its own
    (``km.client()``, own zmq context, libzmq's reconnect interval), then by a client
    on the kernel manager's context, as jupyter_server opens its channels."""
    km = AsyncKernelManager(kernel_name=name)
    t0 = time.perf_counter()
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    # A session of its own (two clients of one session share a socket identity).
    shared = km.client(context=km.context, session=Session(key=km.session.key))
    shared.start_channels()
    try:
        await first_reply(kc)
        started = time.perf_counter() - t0
        restarts = []
        for client in (kc, shared):
            await asyncio.to_thread(wait_prestarted, daemon)
            t1 = time.perf_counter()
            await km.restart_kernel()
            await first_reply(client)
            restarts.append(time.perf_counter() - t1)
        return started, restarts[0], restarts[1]
    finally:
        kc.stop_channels()
        shared.stop_channels()
        await km.shutdown_kernel(now=True)


async def first_reply(kc: Any) -> None:
    """Nudge every 50 ms; the first kernel_info_reply to one of these nudges ends it
    (replies to an earlier phase's nudges may still be queued: they do not count)."""
    sent: set[str] = set()
    while True:
        sent.add(kc.kernel_info())
        try:
            reply = await kc.get_shell_msg(timeout=0.05)
        except Exception:
            continue
        if reply["msg_type"] == "kernel_info_reply" and reply["parent_header"].get("msg_id") in sent:
            return


RAW_MODES = {"at once": None, "ports checked every 10 ms": 0.01, "VS Code (ports checked every 200 ms)": 0.2}


def raw_launch(argv: list[str], workdir: Path, check_every: float | None) -> float:
    """Seconds from spawning a kernelspec's ``argv`` with a connection file of the
    front end's own (free ports, its key), as VS Code does, to the first
    ``kernel_info_reply``. ``check_every``: connect once the shell and iopub ports
    accept TCP connections, checked that often (VS Code's tcp-port-used: 200 ms);
    None: connect at once (ZMQ then retries after its 100-200 ms reconnect interval)."""
    path, info = write_connection_file(str(workdir / f"kernel-{time.monotonic_ns()}.json"), ip="127.0.0.1")
    command = [part.replace("{connection_file}", path) for part in argv]
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while check_every is not None and not all(_listening(info[f"{c}_port"]) for c in ("shell", "iopub")):
            time.sleep(check_every)
        kc = BlockingKernelClient()
        kc.load_connection_info(info)
        kc.start_channels()
        try:
            sent: set[str] = set()
            while True:
                sent.add(kc.kernel_info())
                with contextlib.suppress(queue.Empty):
                    reply = kc.get_shell_msg(timeout=0.05)
                    if reply["msg_type"] == "kernel_info_reply" and reply["parent_header"].get("msg_id") in sent:
                        break
            ready = time.perf_counter() - t0
            kc.shutdown()
            kc.get_control_msg(timeout=30)  # the request delivered before the channels close
        finally:
            kc.stop_channels()
        proc.wait(30)
        return ready
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def time_raw_launches(base: Path, daemon: DaemonProcess, rounds: int) -> None:
    """python3's argv against the runtimed kernelspec's (the argv launcher), spawned
    as VS Code spawns them, in each of :data:`RAW_MODES`."""
    workdir = base / "raw"
    workdir.mkdir()
    argvs = {"python3": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
             "runtimed": list(kernel_spec("uv", "raw", str(daemon.socket))["argv"])}  # type: ignore[call-overload]  # fmt: skip
    results: dict[str, dict[str, list[float]]] = {}
    for mode, every in RAW_MODES.items():
        times: dict[str, list[float]] = {name: [] for name in argvs}
        for _ in range(rounds):
            for name, argv in argvs.items():
                wait_prestarted(daemon)
                times[name].append(raw_launch(argv, workdir, every))
        report(f"raw argv launch (spawn -> first kernel_info_reply), client connecting {mode}", times)
        results[mode] = times
    print("\n" + json.dumps({"raw": results}))


def time_through_server(server: JupyterServer, name: str) -> float:
    t0 = time.perf_counter()
    session = server.request("POST", "/api/sessions", {"path": f"{name}.ipynb", "type": "notebook",
                                                       "kernel": {"name": name}})  # fmt: skip
    ws = server.kernel_socket(session["kernel"]["id"])
    try:
        ws.first_output()
        return time.perf_counter() - t0
    finally:
        ws.close()
        server.request("DELETE", f"/api/sessions/{session['id']}")


def time_server_restarts(base: Path, daemon: DaemonProcess, rounds: int) -> dict[str, list[float]]:
    """A restart as JupyterLab's button does it: ``POST /api/kernels/ID/restart``,
    then the first output over the websocket opened before it. Each kernelspec in a
    server of its own, so the plain one's server never loads runtimed's provisioner."""
    times: dict[str, list[float]] = {}
    for name in ("python3", "prestarted"):
        root = base / f"root-restart-{name}"
        root.mkdir()
        server = JupyterServer(root, dict(os.environ)).start()
        try:
            times[name] = [_server_restart(server, name, daemon) for _ in range(rounds)]
        finally:
            server.stop()
    return times


def _server_restart(server: JupyterServer, name: str, daemon: DaemonProcess) -> float:
    session = server.request("POST", "/api/sessions", {"path": f"{name}.ipynb", "type": "notebook",
                                                       "kernel": {"name": name}})  # fmt: skip
    kernel_id = session["kernel"]["id"]
    ws = server.kernel_socket(kernel_id)
    try:
        ws.first_output()
        wait_prestarted(daemon)
        t0 = time.perf_counter()
        server.request("POST", f"/api/kernels/{kernel_id}/restart")
        ws.nudge()
        return time.perf_counter() - t0
    finally:
        ws.close()
        server.request("DELETE", f"/api/sessions/{session['id']}")


def wait_prestarted(daemon: DaemonProcess) -> None:
    """Wait until the daemon is settled: env pool full, no build in flight, every
    pre-started kernel ready (a refill running on the 2 cores is not what is measured)."""

    def settled() -> bool:
        pool = daemon.status().pools["uv"]
        kernels = pool.kernels
        return (
            kernels is not None
            and kernels.available >= kernels.target >= 1
            and kernels.starting == 0
            and pool.available >= pool.target
            and pool.warming == 0
            and not pool.builds
        )

    wait_for(settled, timeout=600, what="a settled daemon (full env pool, pre-started kernel ready)")


def report(title: str, times: dict[str, list[float]]) -> None:
    """Print medians and ratios against python3 (flushed: the run is long)."""
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{title}")
    for name, values in times.items():
        ms = ", ".join(f"{t * 1e3:.0f}" for t in values)
        print(f"  {name:<11} median {med[name] * 1e3:7.1f} ms   ({ms})")
    ratios = [f"python3 / {name}: {med['python3'] / med[name]:.1f}x" for name in times if name != "python3"]
    print("  " + "   ".join(ratios), flush=True)


def time_other_config_dir(base: Path, daemon: DaemonProcess, rounds: int) -> dict[str, list[float]]:
    """A jupyter_server whose JUPYTER_CONFIG_DIR is not the daemon's: python3 and
    prestarted, opens after the first (printed apart)."""
    config_dir = base / "server-config"
    config_dir.mkdir()
    (base / "root-other").mkdir()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config_dir)}
    server = JupyterServer(base / "root-other", env).start()
    try:
        time_through_server(server, "python3")  # the server's own imports
        wait_prestarted(daemon)
        first = time_through_server(server, "prestarted")
        print(f"\nfirst open with the server's JUPYTER_CONFIG_DIR (teaches the daemon): {first * 1e3:.0f} ms")
        served: dict[str, list[float]] = {"python3": [], "prestarted": []}
        for _ in range(rounds):
            for name in served:
                wait_prestarted(daemon)
                served[name].append(time_through_server(server, name))
        return served
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-server", action="store_true", help="skip the jupyter_server half")
    parser.add_argument(
        "--only-raw", action="store_true", help="only the raw argv launches (as VS Code spawns kernels)"
    )
    parser.add_argument("--no-raw", action="store_true", help="skip the raw argv launches")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runtimed-kbench-") as tmp:
        base = Path(tmp)
        uv_cache = Path.home() / ".cache" / "runtimed-tests" / "uv-cache"  # the test suite's, if present
        env = {"UV_CACHE_DIR": str(uv_cache)} if uv_cache.is_dir() and "UV_CACHE_DIR" not in os.environ else {}
        daemon = DaemonProcess(base, config="[backends.uv]\npool_size = 3\nkernels = 1\n", env=env)
        write_specs(base / "jupyter" / "kernels", str(daemon.socket))
        os.environ.update(jupyter_dirs(base))
        daemon.start()
        server = None
        try:
            print("waiting for the pool and a pre-started kernel ...", flush=True)
            wait_prestarted(daemon)
            if not args.no_raw:
                time_raw_launches(base, daemon, args.rounds)
            if args.only_raw:
                return
            direct: dict[str, list[float]] = {k: [] for k in SPECS}
            restarts: dict[str, list[float]] = {k: [] for k in SPECS}
            shared: dict[str, list[float]] = {k: [] for k in SPECS}
            for _ in range(args.rounds):
                for name in SPECS:
                    wait_prestarted(daemon)
                    started, restarted, restarted_shared = asyncio.run(time_to_ready(name, daemon))
                    direct[name].append(started)
                    restarts[name].append(restarted)
                    shared[name].append(restarted_shared)
            report("KernelManager.start_kernel() -> first kernel_info_reply", direct)
            report("KernelManager.restart_kernel() -> first kernel_info_reply, km.client() (own context)", restarts)
            report("KernelManager.restart_kernel() -> first kernel_info_reply, client on km.context", shared)
            if not args.no_server:
                (base / "root").mkdir()
                server = JupyterServer(base / "root", dict(os.environ)).start()
                served: dict[str, list[float]] = {k: [] for k in SPECS}
                time_through_server(server, "python3")  # warm the server's own imports
                for _ in range(args.rounds):
                    for name in SPECS:
                        wait_prestarted(daemon)
                        served[name].append(time_through_server(server, name))
                report("jupyter_server: POST /api/sessions -> first output over the websocket", served)
                server.stop()
                server = None
                server_restarts = time_server_restarts(base, daemon, args.rounds)
                report("jupyter_server: POST /api/kernels/ID/restart -> first output, websocket held open",
                       server_restarts)  # fmt: skip
                other = time_other_config_dir(base, daemon, args.rounds)
                report("jupyter_server with its own JUPYTER_CONFIG_DIR: opens after the first", other)
            results = {"direct": direct, "restart": restarts, "restart_on_km_context": shared}
            if not args.no_server:
                results.update(server=served, server_restart=server_restarts, other_config_dir=other)
            print("\n" + json.dumps(results))
        finally:
            if server is not None:
                server.stop()
            daemon.stop()


if __name__ == "__main__":
    main()
