"""What an untrusted notebook shows: the packages not installed and the command that approves them."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from runtimed.deps import Backend, DependencySpec, untrusted_message


def test_the_message_names_the_packages_and_the_exact_command(tmp_path: Path) -> None:
    path = tmp_path / "my notebook's.ipynb"
    spec = DependencySpec.create(Backend.UV, ["httpx", "Six>=1"], pins=["httpx==0.28.1", "six==1.17.0"])
    message = untrusted_message(spec, path)
    assert "  httpx\n  six>=1\n" in message
    assert "2 exact versions its uv.lock pins" in message
    command = next(line.strip() for line in message.splitlines() if line.strip().startswith("runtimed trust"))
    assert shlex.split(command) == ["runtimed", "trust", str(path)]  # quoted for the shell
    assert subprocess.run(
        ["sh", "-c", f"printf %s {command.removeprefix('runtimed trust ')}"], capture_output=True, text=True, check=True
    ).stdout == str(path)


def test_conda_channels_are_named() -> None:
    spec = DependencySpec.create(Backend.CONDA, ["numpy"], channels=["conda-forge"])
    assert "conda dependencies were not installed" in untrusted_message(spec, "a.ipynb")
    assert "from conda-forge" in untrusted_message(spec, "a.ipynb")
