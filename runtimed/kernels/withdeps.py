"""A kernel in an env with a notebook's own packages (``TakeKernel.packages``).

The env comes from the daemon's warm sets, or a base env gets the packages
installed now (:mod:`runtimed.daemon.extras`); the kernel is launched in it. If the
packages cannot be installed (an unknown package, no index), the caller serves a
base kernel that tells the user why (``TakeKernel.notice``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import attrs

from runtimed.kernels.projects import launch_in_project
from runtimed.kernels.table import EnvAccess, KernelTable
from runtimed.protocol.messages import LaunchedKernel, TakeKernel

__all__ = ["launch_with_packages", "not_installed_notice"]

log = logging.getLogger("runtimed.kernels")


async def launch_with_packages(
    table: KernelTable, envs: EnvAccess, base_env: Mapping[str, str], request: TakeKernel, owner: int | None
) -> LaunchedKernel | TakeKernel:
    """The kernel, or ``request`` turned into one for a base kernel whose notice says
    why the packages are missing. A request without packages but with a
    ``project_dir`` gets its project's env (:mod:`runtimed.kernels.projects`)."""
    if not request.packages and request.project_dir:
        return await launch_in_project(table, envs, base_env, request, owner)
    backend, packages = request.env_type, ", ".join(request.packages)
    env = await envs.take_with(backend, list(request.packages), list(request.channels))
    if isinstance(env, str):
        log.warning("the notebook's packages (%s) could not be installed: %s; a base kernel serves it", packages, env)
        notice = not_installed_notice(request.packages, env)
        return attrs.evolve(request, packages=[], channels=[], notice=notice)
    log.info("launching a kernel with the notebook's packages (%s) in %s", packages, env.venv_path)
    kernel = await table.launch(backend, env, request, base_env)
    try:
        return table.hand_out(kernel, owner, prestarted=False, reason=f"the notebook's packages: {packages}")
    except BaseException:
        table.forget(kernel)
        raise


def not_installed_notice(packages: list[str], error: str) -> str:
    """What the notebook shows on a failing import when its packages could not be installed."""
    return (
        f"runtimed could not install this notebook's packages ({', '.join(packages)}): {error}\n"
        "This kernel runs in a base env without them; fix the dependencies, then restart the kernel."
    )
