"""An example third-party runtimed backend: envs built with `pixi <https://pixi.sh>`_.

It uses exactly the interface the built-in uv and conda backends use: a
``runtimed_backend`` hook returning a :class:`runtimed.backend.Backend`. runtimed
loads it in its own worker process, so whatever it does cannot hurt the daemon.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import ClassVar

from runtimed.backend import (
    Availability,
    Backend,
    BackendError,
    BuildPhase,
    BuildRequest,
    ErrorKind,
    clean_env,
    hookimpl,
    run_command,
)

__all__ = ["PixiBackend", "runtimed_backend"]


class PixiBackend(Backend):
    """A pixi project per env; the env itself is the project's ``default`` environment."""

    name: ClassVar[str] = "pixi"
    base_packages: ClassVar[tuple[str, ...]] = ("python", "ipykernel", "ipywidgets")

    def availability(self) -> Availability:
        pixi = shutil.which("pixi")
        if pixi is None:
            return Availability(ok=False, reason="pixi not found on PATH (see https://pixi.sh)")
        return Availability(ok=True, detail=pixi)

    def create(self, request: BuildRequest) -> None:
        pixi = shutil.which("pixi")
        if pixi is None:
            raise BackendError(ErrorKind.TOOL_MISSING, "pixi not found on PATH")
        request.path.mkdir(parents=True)
        channels = [arg for channel in request.config.channels for arg in ("--channel", channel)]
        env = clean_env({"PIXI_CACHE_DIR": str(request.cache_dir)})
        request.progress("pixi init")
        run_command([pixi, "init", *channels, str(request.path)], env=env)
        request.phase(BuildPhase.INSTALLING)  # shown in `runtimed status`, timed in `runtimed stats`
        request.progress("pixi add")
        # pixi resolves and installs; unsolvable specs fail here. Classifying its
        # messages finely (network vs invalid_package) is left to a real plugin.
        run_command(
            [pixi, "add", "--manifest-path", str(request.path / "pixi.toml"), *self.packages(request.config)],
            env=env,
            kind=ErrorKind.INVALID_PACKAGE,
        )

    def python_path(self, path: Path) -> Path:
        return path / ".pixi" / "envs" / "default" / "bin" / "python"


@hookimpl
def runtimed_backend() -> Backend:
    return PixiBackend()
