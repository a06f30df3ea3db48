"""Doctor checks of the installed Jupyter kernelspecs that are runtimed's."""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from attrs import define

from runtimed.doctor.results import CheckResult, CheckStatus, DoctorContext
from runtimed.envscripts import KERNEL_LAUNCHER
from runtimed.kernels.specs import default_kernels_dir

__all__ = [
    "PROVISIONER_GROUP",
    "PROVISIONER_NAME",
    "InstalledSpec",
    "check_kernelspecs",
    "find_runtimed_kernelspecs",
    "kernel_dirs",
]

PASS, WARN, FAIL = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL
PROVISIONER_NAME = "runtimed-provisioner"
PROVISIONER_GROUP = "jupyter_client.kernel_provisioners"


@define(frozen=True)
class InstalledSpec:
    name: str
    path: Path  # the kernel.json
    argv: list[str]
    provisioner: str | None  # metadata.kernel_provisioner.provisioner_name
    socket: str | None = None  # the daemon socket it names (provisioner config or --socket)

    @property
    def uses_launcher(self) -> bool:
        """Started through ``python -m runtimed.kernel`` (the pre-provisioner kernelspec)."""
        return "runtimed.kernel" in self.argv


def kernel_dirs() -> list[Path]:
    """Where Jupyter looks for kernelspecs: $JUPYTER_PATH, the user dir, this env, the system."""
    dirs = [Path(p) / "kernels" for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    dirs.append(default_kernels_dir())
    dirs += [Path(sys.prefix) / "share" / "jupyter" / "kernels"]
    dirs += [Path("/usr/local/share/jupyter/kernels"), Path("/usr/share/jupyter/kernels")]
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def find_runtimed_kernelspecs(dirs: list[Path]) -> list[InstalledSpec]:
    """Kernelspecs that run ``runtimed.kernel`` or name the runtimed provisioner (first dir wins a name)."""
    found: dict[str, InstalledSpec] = {}
    for kernels in dirs:
        for kernel_json in sorted(kernels.glob("*/kernel.json")):
            name = kernel_json.parent.name
            data = _read(kernel_json)
            if name in found or data is None:
                continue
            argv = [str(a) for a in data.get("argv") or []]
            meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
            prov = (meta or {}).get("kernel_provisioner")
            provisioner = prov.get("provisioner_name") if isinstance(prov, dict) else None
            config = prov.get("config") if isinstance(prov, dict) else None
            socket = config.get("socket") if isinstance(config, dict) else None
            socket = str(socket) if socket else _socket_arg(argv)
            spec = InstalledSpec(name, kernel_json, argv, provisioner, socket)
            if spec.uses_launcher or provisioner == PROVISIONER_NAME:
                found[name] = spec
    return list(found.values())


def provisioner_installed() -> bool:
    return any(ep.name == PROVISIONER_NAME for ep in metadata.entry_points(group=PROVISIONER_GROUP))


def _socket_arg(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv[:-1]):
        if arg == "--socket":
            return argv[i + 1]
    return None


def jupyter_python(command: str) -> str:
    """The interpreter of a kernelspec's ``argv[0]``: jupyter_client runs a bare
    ``python`` (a kernelspec shipped as a data file) as its own interpreter."""
    major, minor = sys.version_info[:2]
    return sys.executable if command in ("python", f"python{major}", f"python{major}.{minor}") else command


def _check_spec(ctx: DoctorContext, spec: InstalledSpec, has_provisioner: bool) -> CheckResult:
    check = f"kernelspec:{spec.name}"
    reinstall = f"`runtimed kernel install --name {spec.name}` again, or `jupyter kernelspec remove {spec.name}`"
    if not spec.argv:
        return CheckResult(check, FAIL, f"{spec.path} has no argv", reinstall)
    python = jupyter_python(spec.argv[0])
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        return CheckResult(check, FAIL, f"{spec.path} runs {python}, which no longer exists", reinstall)
    launcher = next((a for a in spec.argv[1:] if os.path.basename(a) == KERNEL_LAUNCHER.name), None)
    if launcher is not None and not os.path.isfile(launcher):
        return CheckResult(check, FAIL, f"{spec.path} runs {launcher}, which no longer exists", reinstall)
    if spec.provisioner == PROVISIONER_NAME and not has_provisioner:
        summary = f"{spec.path} names the {PROVISIONER_NAME} provisioner, which is not installed here"
        return CheckResult(check, FAIL, summary, f"pip install runtimed (with the provisioner), or {reinstall}")
    socket = spec.socket
    if socket is not None and Path(socket) != ctx.paths.socket:
        summary = f"{spec.path} talks to the daemon at {socket}, not {ctx.paths.socket}"
        return CheckResult(check, WARN, summary, f"{reinstall} (with the --cache-dir you use)")
    if spec.provisioner != PROVISIONER_NAME and has_provisioner:
        summary = f"{spec.path} uses the older `runtimed.kernel` launcher, not the {PROVISIONER_NAME}"
        return CheckResult(check, WARN, summary, reinstall)
    how = f"provisioner {PROVISIONER_NAME}" if spec.provisioner == PROVISIONER_NAME else "runtimed.kernel"
    return CheckResult(check, PASS, f"{spec.path}: {python} exists; starts via {how}")


def check_kernelspecs(ctx: DoctorContext) -> list[CheckResult]:
    specs = find_runtimed_kernelspecs(kernel_dirs())
    if not specs:
        return [CheckResult("kernelspecs", WARN, "no runtimed kernelspec installed", "`runtimed kernel install`")]
    has_provisioner = provisioner_installed()
    return [_check_spec(ctx, spec, has_provisioner) for spec in specs]
