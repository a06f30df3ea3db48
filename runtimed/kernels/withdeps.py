"""A kernel in an env with a notebook's own packages (``TakeKernel.packages``), or
with its project's (``TakeKernel.project_dir``: the daemon finds the closest project
file above it, see :mod:`runtimed.daemon.projects`).

The env comes from the daemon's warm sets, or a base env gets the packages
installed now (:mod:`runtimed.daemon.extras`); the kernel is launched in it. If the
packages cannot be installed (an unknown package, no index), or the project is not
approved or is malformed, the caller serves a base kernel that tells the user why
(``TakeKernel.notice``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import attrs

from runtimed.kernels.pools import PackageSet
from runtimed.kernels.table import EnvAccess, Gone, KernelTable, never
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
    return PackageSet(found.backend, spec.packages, spec.channels, project_dir=request.project_dir, project=found)


async def take_env_of_set(envs: EnvAccess, wanted: PackageSet, *, recheck: bool = False) -> PooledEnv | str:
    """An env of the set, leased to the daemon; or why there is none. ``recheck``: a
    project's set only if the project is still what it was (not edited since)."""
    if wanted.project is None:
        return await envs.take_with(wanted.backend, list(wanted.packages), list(wanted.channels), wanted.options)
    if recheck:
        assert wanted.project_dir is not None
        now = await envs.find_project(wanted.project_dir)
        if now is None or now.key != wanted.key:
            return "the project changed"
    return await envs.take_project(wanted.project)


async def launch_with_packages(
    table: KernelTable, envs: EnvAccess, base_env: Mapping[str, str], request: TakeKernel, owner: int | None,
    wanted: PackageSet, gone: Gone = never,
) -> LaunchedKernel | TakeKernel:  # fmt: skip
    """A kernel launched in an env of ``wanted`` (the request's packages, or its
    project's), or ``request`` turned into one for a base kernel whose notice says why
    the packages are missing."""
    names = _names(wanted)
    env = await take_env_of_set(envs, wanted)
    if isinstance(env, str):
        log.warning("%s could not be installed: %s; a base kernel serves it", names, env)
        notice = not_installed_notice([*wanted.packages, *_pypi(wanted)], env)
        return attrs.evolve(request, packages=[], channels=[], project_dir=None, notice=notice)
    log.info("launching a kernel with %s in %s", names, env.venv_path)
    kernel = await table.launch(wanted.backend, env, request, base_env, gone)
    try:
        return table.hand_out(kernel, owner, prestarted=False, reason=names)
    except BaseException:
        table.forget(kernel)
        raise


def _names(wanted: PackageSet) -> str:
    if wanted.project is not None:
        return f"the packages of the project {wanted.project.file}"
    return f"the notebook's packages ({', '.join(wanted.packages)})"


def _pypi(wanted: PackageSet) -> tuple[str, ...]:
    spec = wanted.project.spec if wanted.project is not None else None
    return spec.pypi_packages if spec is not None else ()


def not_installed_notice(packages: list[str], error: str) -> str:
    """What the notebook shows on a failing import when its packages could not be installed."""
    return (
        f"runtimed could not install this notebook's packages ({', '.join(packages)}): {error}\n"
        "This kernel runs in a base env without them; fix the dependencies, then restart the kernel."
    )
