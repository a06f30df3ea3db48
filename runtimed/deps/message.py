"""What the notebook shows when its packages were not installed because nobody approved them."""

from __future__ import annotations

import shlex
from pathlib import Path

from runtimed.deps.spec import DependencySpec

__all__ = ["approve_command", "untrusted_message"]


def approve_command(notebook_path: Path | str) -> str:
    """The exact shell command that approves the notebook's dependencies."""
    return f"runtimed trust {shlex.quote(str(notebook_path))}"


def untrusted_message(spec: DependencySpec, notebook_path: Path | str) -> str:
    """A few lines naming the declared packages that were not installed and the command
    that approves them (then restart the kernel)."""
    packages = "\n".join(f"  {p}" for p in spec.packages)
    pins = f" (and the {len(spec.pins)} exact versions its uv.lock pins)" if spec.pins else ""
    channels = f" from {', '.join(spec.channels)}" if spec.channels else ""
    return (
        f"runtimed: this notebook's {spec.backend.value} dependencies were not installed: "
        f"nobody approved them{pins}{channels}. Not installed:\n{packages}\n"
        f"To approve them (installing runs their code), run in a terminal:\n"
        f"  {approve_command(notebook_path)}\n"
        f"then restart the kernel."
    )
