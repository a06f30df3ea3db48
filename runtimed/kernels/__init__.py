"""Jupyter kernels from runtimed: pre-started kernels in the daemon, and the provisioner.

* :mod:`runtimed.kernels.specs` - kernelspecs (install, list, uninstall) and the legacy launcher.
* The script an env's python runs to pre-start an ipykernel is :mod:`runtimed.envscripts.kernel_host`.
* :mod:`runtimed.kernels.pool` - pure bookkeeping of one backend's pre-started kernels.
* :mod:`runtimed.kernels.environ` - a kernel's environment; when a pre-started kernel can serve.
* :mod:`runtimed.kernels.process` - kernel dirs, connection files, records.
* :mod:`runtimed.kernels.launch` - starting kernel processes and their control channel.
* :mod:`runtimed.kernels.owners` - pure decision: when an owner's death ends a kernel.
* :mod:`runtimed.kernels.keeper` - the daemon side (I/O): keeps, hands out, watches kernels.
* :mod:`runtimed.kernels.table` - the kernels the daemon started or watches: dirs, envs, launches.
* :mod:`runtimed.kernels.provisioner` - the jupyter_client provisioner (front-end side).
"""

__all__: list[str] = []
