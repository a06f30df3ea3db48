"""``runtimed-provisioner``: a jupyter_client kernel provisioner served by the daemon.

A kernelspec whose ``metadata.kernel_provisioner`` names it (``runtimed kernel
install``) gets, in order of preference:

1. a pre-started kernel, told the front end's cwd, env and kernel arguments;
2. a kernel launched by the daemon in a pooled env (no pre-started kernel can
   serve: none ready, arguments that need a fresh kernel, a restart);
3. the kernelspec's own ``argv``, launched exactly as ``LocalProvisioner`` would
   (no daemon, or an empty pool after ``wait_s``), or when transport encryption
   is required (runtimed's kernels do not do CURVE). With ``RUNTIMED_KERNEL_DIRECT=1``
   set, the argv launcher (:mod:`runtimed.envscripts.kernel_launcher`) does not ask
   the daemon again and execs ipykernel at once.

With no daemon at all it also starts one in the background (``auto_start``, see
:mod:`runtimed.client.autostart`), so the next kernel comes from the pool; the kernel
that triggered it is launched from the kernelspec's argv at once, without waiting
for the new daemon (``auto_start_wait_s = 0``): measured, a new daemon cannot serve
a kernel before that argv is ready (README, "Automatic start").

Each fallback is logged with its reason. The kernel runs in its own session, not
as a child of this process: signals go to its process group, and liveness is
checked by pid and start time. A restart keeps the connection info (ports and
key), so clients connected before it keep working.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import attrs
import zmq
from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase
from traitlets import Bool, Float, Unicode

from runtimed.client import Client, DaemonAbsent, DaemonError, DaemonNotRunning
from runtimed.client.autostart import AutoStart, auto_start, wait_until_answering
from runtimed.envscripts import KERNEL_LAUNCHER
from runtimed.envscripts.kernel_launcher import DIRECT_ENV, parse_connection, split_own
from runtimed.kernels.notebook import notebook_packages, project_dir
from runtimed.kernels.process import kill_group
from runtimed.kernels.specs import LAUNCHER_MODULE
from runtimed.protocol.messages import LaunchedKernel, PackageOptions, TakeKernel
from runtimed.util.liveness import is_alive

__all__ = ["RuntimedProvisioner", "kernel_arguments", "quick_reconnect"]

_LAUNCHERS = (["-m", "ipykernel_launcher"], ["-m", "ipykernel"])
RESPONSIVE_S = 3.0  # a daemon that does not answer a ping within this is passed over
ENDING_WAIT_S = 0.5  # after a shutdown request, how long one poll() waits for the kernel to end
# The front end's sockets on its kernel manager's context first reconnect this soon
# after a connection drops (a restart), then back off to libzmq's usual 100 ms.
RECONNECT_IVL_MS = 10
RECONNECT_IVL_MAX_MS = 100


def kernel_arguments(spec_argv: list[str], extra: list[str]) -> list[str] | None:
    """The kernel arguments beyond the connection file of a plain ipykernel argv or
    of the argv launcher's, plus ``extra``; None when the kernelspec runs something else."""
    rest = _launcher_arguments(spec_argv)
    if rest is None:
        if len(spec_argv) < 3 or spec_argv[1:3] not in _LAUNCHERS:
            return None
        rest = spec_argv[3:]
    return [*parse_connection(rest)[2], *extra]


def _launcher_arguments(spec_argv: list[str]) -> list[str] | None:
    """What follows the argv launcher (by path or ``-m``), less its own options."""
    for at, arg in enumerate(spec_argv):
        if arg == "-m" and spec_argv[at + 1 : at + 2] == [LAUNCHER_MODULE]:
            return split_own(spec_argv[at + 2 :])[1]
        if os.path.basename(arg) == KERNEL_LAUNCHER.name:
            return split_own(spec_argv[at + 1 :])[1]
    return None


class RuntimedProvisioner(KernelProvisionerBase):  # type: ignore[misc]
    """Kernels from the runtimed daemon, with LocalProvisioner as the last resort."""

    backend = Unicode("uv", config=True, help="the runtimed backend (pool) to take kernels from")
    socket = Unicode("", config=True, help="the daemon's socket (default: the usual place)")
    wait_s = Float(2.0, config=True, help="seconds to wait for an env when no pre-started kernel is ready")
    prestarted = Bool(True, config=True, help="use pre-started kernels (False: always a fresh kernel in a pooled env)")
    cache_dir = Unicode("", config=True, help="the daemon's cache dir (default: the usual place)")
    auto_start = Bool(
        True,
        config=True,
        help="start a daemon in the background when none runs (also needs RUNTIMED_AUTO_START "
        "and [daemon] auto_start to allow it)",
    )
    # 0: the kernel that triggers an auto-start is launched from the kernelspec's argv
    # right away. Waiting for the new daemon was measured slower on every path
    # (bench/autostart.py, README "Automatic start"; medians to ready on a loaded
    # 2-core machine): argv at once 1.5 s (plain python3: 1.1 s), waiting with pooled
    # envs already on disk 6.6 s, waiting on first use (env to build) 25 s. A new daemon
    # must start, load plugins and pool or build an env before it can launch a kernel.
    auto_start_wait_s = Float(
        0.0,
        config=True,
        help="after starting a daemon, seconds to wait for it to serve this kernel (0: launch the argv at once)",
    )

    kernel: LaunchedKernel | None = None
    _local: LocalProvisioner | None = None
    _pid: int | None = None
    _create_time: float | None = None
    _ending = False  # a shutdown was requested: poll() waits a moment for the end

    # ------------------------------------------------------------ launching

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        original = dict(kwargs)
        km = self.parent
        quick_reconnect(getattr(km, "context", None))
        # Every start asks the daemon again: a restart after a fallback (an empty
        # pool, no daemon) is served by runtimed once it can serve, on the same ports.
        restart = self.kernel is not None or self._local is not None
        self._local = None
        self._ending = False
        policy = "disabled"
        if km is not None and hasattr(km, "_transport_encryption_policy"):
            policy = km._transport_encryption_policy(kwargs.pop("transport_encryption", None))
        kwargs.pop("transport_encryption", None)
        extra = kernel_arguments(list(self.kernel_spec.argv), list(kwargs.pop("extra_arguments", None) or []))
        kwargs = await super().pre_launch(**kwargs)
        if policy == "required":
            return await self._launch_locally("transport encryption is required", original, keep_ports=restart)
        if extra is None:
            reason = "the kernelspec's argv is not a plain ipykernel launch"
            return await self._launch_locally(reason, original, keep_ports=restart)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        wants = notebook_packages(kwargs["env"], cwd, self.backend, self.log)
        request = TakeKernel(
            env_type=wants.backend if wants else self.backend,
            cwd=cwd,
            env=dict(kwargs["env"]),
            argv=extra,
            packages=wants.packages if wants else [],
            channels=wants.channels if wants else [],
            options=wants.options if wants else PackageOptions(),
            notice=wants.notice if wants else "",
            project_dir=None if wants else project_dir(kwargs["env"], cwd),
            owner_pid=os.getpid(),
            connection=_jsonable(self.connection_info) if restart else None,
            connection_file=getattr(km, "connection_file", None) or None if restart else None,
            wait_s=self.wait_s,
            prestarted=self.prestarted,
        )
        try:
            kernel = await asyncio.to_thread(self._take, request)
        except DaemonAbsent as exc:
            reason = f"runtimed: {exc}"
            started = await asyncio.to_thread(self._auto_start)
            if started is None or self.auto_start_wait_s <= 0:
                return await self._launch_locally(reason, original, keep_ports=restart)
            try:
                kernel = await asyncio.to_thread(self._take_after_start, request, started)
            except (DaemonNotRunning, DaemonError) as again:
                return await self._launch_locally(f"runtimed: {again}", original, keep_ports=restart)
        except (DaemonNotRunning, DaemonError) as exc:
            return await self._launch_locally(f"runtimed: {exc}", original, keep_ports=restart)
        except (OSError, ValueError) as exc:  # a request this client could not send, a broken reply
            return await self._launch_locally(f"runtimed: {type(exc).__name__}: {exc}", original, keep_ports=restart)
        if kernel is None:
            reason = f"the {self.backend} pool is empty (waited {self.wait_s:.1f}s)"
            return await self._launch_locally(reason, original, keep_ports=restart)
        how = "a pre-started kernel" if kernel.prestarted else f"a kernel in a pooled env ({kernel.reason})"
        self.log.info("runtimed: %s, pid %d, env %s", how, kernel.pid, kernel.env.venv_path)
        self.kernel = kernel
        self._pid, self._create_time = kernel.pid, kernel.create_time
        info: Any = dict(kernel.connection)
        info["key"] = str(info.get("key", "")).encode()  # jupyter_client wants bytes
        self.connection_info = info
        kwargs["cmd"] = []  # nothing to launch here: the daemon did
        return kwargs

    def _take(self, request: TakeKernel) -> LaunchedKernel | None:
        with Client(self.socket or None, cache_dir=self.cache_dir or None) as client:
            # A daemon that accepts but does not answer (stopped, wedged) is found in
            # seconds: the take itself may rightly take minutes (a kernel launched in
            # a pooled env), so its own timeout cannot tell. The ping costs ~0.2 ms.
            client.ping(timeout=RESPONSIVE_S)
            return client.take_kernel(request)

    def _auto_start(self) -> AutoStart | None:
        """Start a daemon in the background (the settings allowing); the outcome if one was started."""
        if not self.auto_start:
            self.log.info("runtimed: not starting a daemon: auto_start is off in the kernelspec")
            return None
        outcome = auto_start(cache_dir=self.cache_dir or None, socket=self.socket or None)
        if outcome.started:
            assert outcome.paths is not None
            self.log.info(
                "runtimed: started a daemon in the background (pid %s, cache dir %s, log %s) because %s; "
                "the next kernels come from its pool",
                outcome.pid,
                outcome.paths.cache_dir,
                outcome.paths.log,
                outcome.reason,
            )
            return outcome
        self.log.info("runtimed: not starting a daemon: %s", outcome.reason)
        return None

    def _take_after_start(self, request: TakeKernel, started: AutoStart) -> LaunchedKernel | None:
        """Wait (``auto_start_wait_s`` in all) for the new daemon and take a kernel from it."""
        assert started.paths is not None
        deadline = time.monotonic() + self.auto_start_wait_s
        problem = wait_until_answering(started.paths, self.auto_start_wait_s, started.pid)
        if problem is not None:
            raise DaemonNotRunning(problem)
        request = attrs.evolve(request, wait_s=max(0.0, deadline - time.monotonic()))
        with Client(started.paths.socket) as client:
            return client.take_kernel(request)

    async def _launch_locally(self, reason: str, kwargs: dict[str, Any], keep_ports: bool = False) -> dict[str, Any]:
        self.log.warning("runtimed: starting the kernelspec's own argv: %s", reason)
        # The argv launcher must not ask the daemon again: this provisioner just did.
        kwargs = {**kwargs, "env": {**(kwargs.get("env") or os.environ), DIRECT_ENV: "1"}}
        self._local = LocalProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self.parent)
        if keep_ports:
            self._local.ports_cached = True  # the restart keeps the ports the kernel manager holds
        return await self._local.pre_launch(**kwargs)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        if self._local is not None:
            info = await self._local.launch_kernel(cmd, **kwargs)
            self.connection_info = self._local.connection_info
            return info
        return self.connection_info

    # ------------------------------------------------------------ the process

    @property
    def has_process(self) -> bool:
        if self._local is not None:
            return self._local.has_process
        return self._pid is not None

    async def shutdown_requested(self, restart: bool = False) -> None:
        """A shutdown request was sent: the next :meth:`poll` waits for the kernel
        to end (a pre-started kernel exits ~70 ms after its reply) rather than
        letting jupyter_client look again only 100 ms later."""
        self._ending = True
        if self._local is not None:
            await self._local.shutdown_requested(restart=restart)

    async def poll(self) -> int | None:
        if self._local is not None:
            return await self._local.poll()
        if self._pid is None:
            return 0
        deadline = time.monotonic() + (ENDING_WAIT_S if self._ending else 0.0)
        while is_alive(self._pid, self._create_time):
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.005)
        return 0

    async def wait(self) -> int | None:
        if self._local is not None:
            return await self._local.wait()
        while await self.poll() is None:
            await asyncio.sleep(0.05)
        self._pid = None
        return 0

    async def send_signal(self, signum: int) -> None:
        if self._local is not None:
            await self._local.send_signal(signum)
        elif self._pid is not None and is_alive(self._pid, self._create_time):
            kill_group(self._pid, signum)

    async def kill(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)

    async def cleanup(self, restart: bool = False) -> None:
        """The daemon deletes the kernel's env once the kernel process is gone."""
        if self._local is not None:
            await self._local.cleanup(restart=restart)


def quick_reconnect(context: object) -> None:
    """Make the sockets a front end opens on ``context`` after this (jupyter_server's
    channels, the kernel manager's control socket) reconnect ~10 ms after a connection
    drops, backing off to 100 ms, instead of libzmq's 100-200 ms: a restart drops
    every connection, and the new kernel is listening long before that. A default
    the front end set itself (either option) is kept."""
    if not isinstance(context, zmq.Context) or {zmq.RECONNECT_IVL, zmq.RECONNECT_IVL_MAX} & set(context.sockopts):
        return
    context.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    context.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)


def _jsonable(info: Any) -> dict[str, Any]:
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in dict(info).items()}
