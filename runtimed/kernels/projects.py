"""A kernel in the env of the notebook's project (``TakeKernel.project_dir``).

The daemon finds the closest project file above the directory, reads it in the
backend's worker, checks the approval and serves the project's env from its warm
set (:mod:`runtimed.daemon.projects`); the kernel is launched in it. With no
project, the request goes on as a plain one; with an unapproved or malformed
project, as one for a base kernel whose notice says why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import attrs

from runtimed.kernels.table import EnvAccess, KernelTable
from runtimed.protocol.messages import LaunchedKernel, TakeKernel

__all__ = ["launch_in_project"]

log = logging.getLogger("runtimed.kernels")


async def launch_in_project(
    table: KernelTable, envs: EnvAccess, base_env: Mapping[str, str], request: TakeKernel, owner: int | None
) -> LaunchedKernel | TakeKernel:
    """The kernel, or ``request`` (without ``project_dir``) to serve as a plain take."""
    assert request.project_dir is not None
    served = await envs.take_project(request.project_dir)
    request = attrs.evolve(request, project_dir=None)
    if served is None:
        return request
    if served.env is None:
        log.warning("the project %s is not installed; a base kernel serves it", served.file)
        return attrs.evolve(request, notice=served.notice)
    log.info("launching a kernel in the env of the project %s (%s)", served.file, served.env.venv_path)
    kernel = await table.launch(served.backend, served.env, request, base_env)
    try:
        return table.hand_out(kernel, owner, prestarted=False, reason=f"the project {served.file}")
    except BaseException:
        table.forget(kernel)
        raise
