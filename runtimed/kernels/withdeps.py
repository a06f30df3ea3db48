"""A kernel in an env with a notebook's own packages (``TakeKernel.packages``).

The env comes from the daemon's warm sets, or a base env gets the packages
installed now (:mod:`runtimed.daemon.extras`); the kernel is launched in it. If the
packages cannot be installed (an unknown package, no index), the caller serves a
base kernel that tells the user why (``TakeKernel.notice``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import attrs

from runtimed.kernels.pools import PackageSet
from runtimed.kernels.projects import launch_in_project
from runtimed.kernels.table import EnvAccess, KernelTable
from runtimed.protocol.messages import LaunchedKernel, PooledEnv, TakeKernel

__all__ = ["launch_with_packages", "not_installed_notice", "package_set_of", "take_env_of_set"]

log = logging.getLogger("runtimed.kernels")


async def package_set_of(envs: EnvAccess, request: TakeKernel) -> PackageSet | TakeKernel:
    """The package set a request with packages or a ``project_dir`` asks for; or, when
    the directory has no approved project, ``request`` to serve as a plain take (with
    the notice that says why a project's packages are missing)."""
    if request.packages:
        return PackageSet(request.env_type, tuple(request.packages), tuple(request.channels), request.options)
    assert request.project_dir is not None
    found = await envs.find_project(request.project_dir)
    plain = attrs.evolve(request, project_dir=None)
    if found is None or found.spec is None:
        return attrs.evolve(plain, notice=found.notice) if found is not None else plain
    spec = found.spec
    return PackageSet(
        found.backend, spec.packages, spec.channels,
        project_dir=request.project_dir, project_key=found.key, project_file=found.file,
    )  # fmt: skip


async def take_env_of_set(envs: EnvAccess, wanted: PackageSet) -> PooledEnv | str:
    """An env of the set for one more of its pre-started kernels; or why there is none."""
    if wanted.project_dir is None:
        return await envs.take_with(wanted.backend, list(wanted.packages), list(wanted.channels), wanted.options)
    served = await envs.take_project(wanted.project_dir)
    if served is None or served.env is None:
        return served.notice if served is not None else "the project is gone"
    if served.key != wanted.key:  # edited meanwhile: the env is of its next set
        envs.discard(Path(served.env.venv_path))
        return "the project changed"
    return served.env


async def launch_with_packages(
    table: KernelTable, envs: EnvAccess, base_env: Mapping[str, str], request: TakeKernel, owner: int | None
) -> LaunchedKernel | TakeKernel:
    """The kernel, or ``request`` turned into one for a base kernel whose notice says
    why the packages are missing. A request without packages but with a
    ``project_dir`` gets its project's env (:mod:`runtimed.kernels.projects`)."""
    if not request.packages and request.project_dir:
        return await launch_in_project(table, envs, base_env, request, owner)
    backend, packages = request.env_type, ", ".join(request.packages)
    env = await envs.take_with(backend, list(request.packages), list(request.channels), request.options)
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
