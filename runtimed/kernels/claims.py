"""Setting up an idle kernel for the request that claimed it: a pre-started kernel
takes over the front end's connection, a pre-imported interpreter starts its kernel.

Both hand the process the request's cwd, environment (with the env's activation),
kernel arguments and notice over its control channel (:func:`~runtimed.kernels.launch.claim`),
and leave the kernel's connection info in :attr:`LiveKernel.connection`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtimed.kernels.environ import kernel_environ
from runtimed.kernels.launch import KernelStartError, LiveKernel, claim
from runtimed.kernels.process import connection_info, new_connection_file, read_connection
from runtimed.protocol.messages import TakeKernel

__all__ = ["claim_prestarted", "start_preimported"]


async def claim_prestarted(kernel: LiveKernel, request: TakeKernel, activation: Mapping[str, str]) -> None:
    """Hand ``kernel`` its cwd, env, arguments and the connection to take over (pinned ports and key)."""
    message: dict[str, Any] = {"cwd": request.cwd, "env": kernel_environ(request.env, activation), "argv": request.argv}
    if request.connection is not None:
        message["connection"] = request.connection
        message["connection_file"] = request.connection_file
    if request.notice:
        message["notice"] = request.notice
    await claim(kernel, message)
    if request.connection is not None:
        new_connection_file(kernel.dir, request.connection)  # on disk too: what it serves now
        kernel.connection = connection_info(request.connection)


async def start_preimported(kernel: LiveKernel, request: TakeKernel, activation: Mapping[str, str]) -> None:
    """Have a pre-imported interpreter start its kernel as ``request`` asks (fixed
    ports for a restart, its kernel arguments), and take its connection info."""
    connection_file = new_connection_file(kernel.dir, request.connection)
    message = {"connection_file": str(connection_file), "cwd": request.cwd, "argv": request.argv,
               "env": kernel_environ(request.env, activation), "notice": request.notice}  # fmt: skip
    await claim(kernel, message)
    info = read_connection(connection_file)
    if info is None:
        raise KernelStartError("the kernel did not write its ports to its connection file")
    kernel.connection = info
