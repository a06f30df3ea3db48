"""runtimed kernelspecs (install, list, uninstall) and the legacy launcher.

``runtimed kernel install`` writes a kernelspec served by ``runtimed-provisioner``
(:mod:`runtimed.kernels.provisioner`) for front ends that use kernel provisioners.
Its ``argv`` is the fast argv launcher (:mod:`runtimed.envscripts.kernel_launcher`),
run by absolute path with ``-I -S`` so any Python 3 can run it (VS Code swaps
``argv[0]`` for the interpreter the user picked): front ends that run the argv
themselves get a kernel from the daemon too, and a plain ipykernel with this
interpreter when it cannot serve. The package also ships the same kernelspec as a
data file (``share/jupyter/kernels/runtimed-uv``, :func:`kernel_spec` with
``portable=True``: ``python -m``, no absolute path), so installing runtimed is
enough for the Jupyter of that env; a user-level ``runtimed kernel install`` of the
same name overrides it.

``python -m runtimed.kernel`` is kept for front ends without kernel provisioners
(jupyter_client < 7): it takes a ready env from the daemon, leased to its own pid,
then *execs* that env's python as ``-m ipykernel_launcher`` (the kernel keeps the
pid, so it holds the lease). With no daemon it starts one in the background
(:mod:`runtimed.client.autostart`) for the next kernels, and starts this kernel with this
interpreter at once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from attrs import define

from runtimed.client import Client, DaemonAbsent, DaemonError, DaemonNotRunning
from runtimed.envscripts import KERNEL_LAUNCHER

__all__ = [
    "LAUNCHER_MODULE",
    "PROVISIONER_NAME",
    "KernelSpecInfo",
    "default_kernels_dir",
    "install",
    "kernel_spec",
    "launcher_argv",
    "list_specs",
    "main",
    "uninstall",
]

PROVISIONER_NAME = "runtimed-provisioner"
LAUNCHER_MODULE = "runtimed.envscripts.kernel_launcher"


def default_kernels_dir() -> Path:
    """Jupyter's per-user kernels dir (``$JUPYTER_DATA_DIR/kernels`` if set)."""
    data = os.environ.get("JUPYTER_DATA_DIR")
    if data:
        return Path(data) / "kernels"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Jupyter" / "kernels"
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "jupyter" / "kernels"


def launcher_argv(
    backend: str, socket: str | None = None, cache_dir: str | None = None, *, portable: bool = False
) -> list[str]:
    """The argv launcher's command line: by absolute path with this interpreter, or
    (``portable``, for a data file) ``python -m``, which jupyter_client resolves to its own."""
    if portable:
        command = ["python", "-m", LAUNCHER_MODULE]
    else:
        command = [sys.executable, "-I", "-S", str(KERNEL_LAUNCHER.absolute()), "--python", sys.executable]
    command += ["--backend", backend]
    if socket:
        command += ["--socket", socket]
    if cache_dir:
        command += ["--cache-dir", cache_dir]
    return [*command, "-f", "{connection_file}"]


def kernel_spec(
    backend: str,
    display_name: str | None = None,
    socket: str | None = None,
    cache_dir: str | None = None,
    *,
    portable: bool = False,
) -> dict[str, object]:
    """The ``kernel.json`` of a kernel served by runtimed from ``backend`` (pinned to
    the daemon of ``socket`` / ``cache_dir`` when given; ``portable``: no absolute path)."""
    config: dict[str, str] = {"backend": backend}
    if socket:
        config["socket"] = socket
    if cache_dir:
        config["cache_dir"] = cache_dir
    return {
        "argv": launcher_argv(backend, socket, cache_dir, portable=portable),
        "display_name": display_name or f"Python (runtimed {backend})",
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {
            "kernel_provisioner": {"provisioner_name": PROVISIONER_NAME, "config": config},
            "runtimed": {"backend": backend},
        },
    }


@define(frozen=True)
class KernelSpecInfo:
    """A runtimed kernelspec found on disk."""

    name: str
    path: Path
    backend: str
    display_name: str


def list_specs(kernels_dir: Path) -> list[KernelSpecInfo]:
    """The runtimed kernelspecs in ``kernels_dir`` (others are left out)."""
    found = []
    for spec_file in sorted(kernels_dir.glob("*/kernel.json")):
        try:
            spec = json.loads(spec_file.read_text())
        except (OSError, ValueError):
            continue
        runtimed = spec.get("metadata", {}).get("runtimed") if isinstance(spec, dict) else None
        if isinstance(runtimed, dict):
            found.append(
                KernelSpecInfo(
                    name=spec_file.parent.name,
                    path=spec_file.parent,
                    backend=str(runtimed.get("backend", "")),
                    display_name=str(spec.get("display_name", "")),
                )
            )
    return found


def uninstall(kernels_dir: Path, name: str) -> Path:
    """Remove the runtimed kernelspec ``name``; ValueError if there is none by that name."""
    for info in list_specs(kernels_dir):
        if info.name == name:
            shutil.rmtree(info.path)
            return info.path
    raise ValueError(f"no runtimed kernelspec named {name!r} in {kernels_dir}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runtimed.kernel",
        description="Start an ipykernel in a prewarmed env from the runtimed pool (used by kernelspecs).",
    )
    parser.add_argument("--backend", default="uv", help="pool to take the env from (default: uv)")
    parser.add_argument("--socket", help="the daemon's socket (default: the usual place)")
    parser.add_argument("--cache-dir", help="the daemon's cache dir (default: the usual place)")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for a warming env")
    args, kernel_args = parser.parse_known_args(argv)
    env = None
    try:
        with Client(args.socket, cache_dir=args.cache_dir) as client:
            env = client.take(args.backend, wait_s=args.wait, lease_pid=os.getpid())
        reason = f"the {args.backend} pool is empty"
    except DaemonAbsent as exc:
        # Start one for the next kernels; this one starts now, from this interpreter
        # (waiting for a new daemon is slower: see runtimed.client.autostart).
        reason = f"{exc}; {_auto_start_note(args.cache_dir, args.socket)}"
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


def _auto_start_note(cache_dir: str | None, socket: str | None) -> str:
    from runtimed.client.autostart import auto_start

    outcome = auto_start(cache_dir=cache_dir, socket=socket)
    if outcome.started:
        return f"started a daemon in the background (pid {outcome.pid}) because {outcome.reason}"
    return f"not starting a daemon: {outcome.reason}"


def install(kernels_dir: Path, name: str, spec: dict[str, object]) -> Path:
    """Write ``kernels_dir/name/kernel.json``; returns the kernelspec dir."""
    target = kernels_dir / name
    target.mkdir(parents=True, exist_ok=True)
    (target / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
    return target


if __name__ == "__main__":
    sys.exit(main())
