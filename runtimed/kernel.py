"""Start a Jupyter kernel in an env from the pool: ``python -m runtimed.kernel``.

A kernelspec (``runtimed kernel install``) runs this with ``-f {connection_file}``.
It takes a ready env from the daemon, leased to its own pid, then *execs* that
env's python as ``-m ipykernel_launcher``: the kernel keeps the pid, so the lease
holder is the kernel itself and the env is deleted once the kernel exits. With no
daemon (or an empty pool) the kernel starts with the interpreter running this
module instead, so a notebook always gets a kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from runtimed.client import Client, DaemonError, DaemonNotRunning

__all__ = ["default_kernels_dir", "install", "kernel_spec", "main"]


def default_kernels_dir() -> Path:
    """Jupyter's per-user kernels dir (``$JUPYTER_DATA_DIR/kernels`` if set)."""
    data = os.environ.get("JUPYTER_DATA_DIR")
    if data:
        return Path(data) / "kernels"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Jupyter" / "kernels"
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "jupyter" / "kernels"


def kernel_spec(backend: str, display_name: str | None = None, socket: str | None = None) -> dict[str, object]:
    """The ``kernel.json`` of a kernel that starts from ``backend``'s pool."""
    argv = [sys.executable, "-m", "runtimed.kernel", "--backend", backend]
    if socket:
        argv += ["--socket", socket]
    return {
        "argv": [*argv, "-f", "{connection_file}"],
        "display_name": display_name or f"Python (runtimed {backend})",
        "language": "python",
        "metadata": {"runtimed": {"backend": backend}},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runtimed.kernel",
        description="Start an ipykernel in a prewarmed env from the runtimed pool (used by kernelspecs).",
    )
    parser.add_argument("--backend", default="uv", help="pool to take the env from (default: uv)")
    parser.add_argument("--socket", help="the daemon's socket (default: the usual place)")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for a warming env")
    args, kernel_args = parser.parse_known_args(argv)
    env = None
    try:
        with Client(args.socket) as client:
            env = client.take(args.backend, wait_s=args.wait, lease_pid=os.getpid())
        reason = f"the {args.backend} pool is empty"
    except (DaemonNotRunning, DaemonError) as exc:
        reason = str(exc)
    if env is not None:
        python = env.python_path
        print(f"runtimed: kernel in pooled env {env.venv_path}", file=sys.stderr, flush=True)
    else:
        python = sys.executable
        print(f"runtimed: {reason}; starting the kernel with {python}", file=sys.stderr, flush=True)
    os.execv(python, [python, "-m", "ipykernel_launcher", *kernel_args])
    return 1  # not reached


def install(kernels_dir: Path, name: str, spec: dict[str, object]) -> Path:
    """Write ``kernels_dir/name/kernel.json``; returns the kernelspec dir."""
    target = kernels_dir / name
    target.mkdir(parents=True, exist_ok=True)
    (target / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
    return target


if __name__ == "__main__":
    sys.exit(main())
