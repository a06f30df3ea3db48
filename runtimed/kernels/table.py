"""The kernels the daemon started or watches, with their dirs and envs (I/O).

One :class:`LiveKernel` per kernel id: tracked when its process starts (its env is
leased to it, its record written), handed out (the record names the owner), and
forgotten when it ends (process, dir and env go). A normal ``ipykernel_launcher``
is launched here too. What the envs are is :class:`EnvAccess`; which kernels to
keep and hand out is :class:`~runtimed.kernels.keeper.KernelKeeper`.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import attrs
from attrs import define, field

from runtimed.core.project import ProjectSpec
from runtimed.kernels.environ import kernel_environ
from runtimed.kernels.launch import (
    ClientGone,
    KernelStartError,
    LiveKernel,
    end_process,
    launch_ipykernel,
    log_tail,
    wait_connection,
)
from runtimed.kernels.process import (
    KernelRecord,
    KernelState,
    kill_group,
    make_kernel_dir,
    new_connection_file,
    read_record,
    remove_kernel_dir,
    write_record,
)
from runtimed.protocol.messages import LaunchedKernel, PackageOptions, PooledEnv, TakeKernel
from runtimed.util.files import new_env_id
from runtimed.util.liveness import create_time_of, is_alive

__all__ = ["EXIT_CODES_KEPT", "EnvAccess", "Gone", "KernelTable", "ProjectFound", "never"]

log = logging.getLogger("runtimed.kernels")

#: Whether the client that asked for a kernel has gone (its connection closed).
Gone = Callable[[], bool]


def never() -> bool:
    return False


EXIT_CODES_KEPT = 256  # exit statuses of forgotten kernels, for launchers asking late


async def _no_extras(
    backend: str, packages: list[str], channels: list[str], options: PackageOptions
) -> PooledEnv | str:
    return f"the {backend} envs of this daemon cannot have extra packages"


@define(frozen=True)
class ProjectFound:
    """The notebook's project as ``find_project`` found it: approved (its ``spec``, and
    its ``key``, which names its warm set), or why a base kernel serves it (``notice``)."""

    file: str
    backend: str
    notice: str = ""
    key: str = ""
    spec: ProjectSpec | None = None


async def _no_projects(start_dir: str) -> ProjectFound | None:
    return None


async def _no_project_envs(found: ProjectFound) -> PooledEnv | str:
    return "this daemon serves no project envs"


@define(frozen=True)
class EnvAccess:
    """What the keeper may do with envs (given by the supervisor)."""

    take: Callable[[str, float], Awaitable[PooledEnv | None]]  # leased to the daemon until re-leased
    lease: Callable[[Path, int], None]  # the env now belongs to this (kernel) pid
    discard: Callable[[Path], None]  # delete it (its kernel is gone)
    activation: Callable[[PooledEnv], Mapping[str, str]]  # variables that activate it
    # An env with extra packages (backend, packages, channels, options), leased to the
    # daemon; or why there is none (an unknown package, no index...).
    take_with: Callable[[str, list[str], list[str], PackageOptions], Awaitable[PooledEnv | str]] = field(
        default=_no_extras
    )
    # The closest project above a directory (see ProjectFound); None when there is none.
    find_project: Callable[[str], Awaitable[ProjectFound | None]] = field(default=_no_projects)
    # An env of an approved project, leased to the daemon; or why there is none.
    take_project: Callable[[ProjectFound], Awaitable[PooledEnv | str]] = field(default=_no_project_envs)


class KernelTable:
    """Kernels by id, each with its dir under ``root`` and its env."""

    def __init__(self, root: Path, envs: EnvAccess) -> None:
        self.root = root
        self.envs = envs
        self.kernels: dict[str, LiveKernel] = {}
        self.exit_codes: OrderedDict[str, int] = OrderedDict()  # of kernels forgotten lately

    def recover(self) -> None:
        """Kill idle kernels a previous daemon left; watch its handed-out ones again."""
        if not self.root.is_dir():
            return
        for kernel_dir in self.root.iterdir():
            record = read_record(kernel_dir)
            if record is None or not is_alive(record.pid, record.create_time):
                remove_kernel_dir(kernel_dir)
            elif record.state is KernelState.IDLE:
                log.info("killing pre-started kernel %s (pid %d) left by a previous daemon", record.id, record.pid)
                kill_group(record.pid)
                remove_kernel_dir(kernel_dir)
            else:
                log.info("watching handed-out kernel %s (pid %d, owner %s)", record.id, record.pid, record.owner_pid)
                self.kernels[record.id] = LiveKernel(record=record, dir=kernel_dir)

    def track(
        self, backend: str, kernel_id: str, kernel_dir: Path, env: PooledEnv, proc: subprocess.Popen[bytes]
    ) -> LiveKernel:
        """A kernel process just started in ``env``: lease the env to it, record it."""
        self.envs.lease(Path(env.venv_path), proc.pid)
        record = KernelRecord(
            id=kernel_id,
            backend=backend,
            env_path=env.venv_path,
            pid=proc.pid,
            create_time=create_time_of(proc.pid) or 0.0,
            state=KernelState.IDLE,
        )
        write_record(kernel_dir, record)
        kernel = LiveKernel(record=record, dir=kernel_dir, proc=proc, env_python=env.python_path)
        self.kernels[kernel_id] = kernel
        return kernel

    async def launch(
        self, backend: str, env: PooledEnv, request: TakeKernel, default_env: Mapping[str, str], gone: Gone = never
    ) -> LiveKernel:
        """A normal ``ipykernel_launcher`` in ``env`` (fixed ports when asked); none, and
        the env discarded, if the client has ``gone`` (:class:`ClientGone`)."""
        kernel_dir: Path | None = None
        proc: subprocess.Popen[bytes] | None = None
        kernel: LiveKernel | None = None
        try:
            if gone():
                raise ClientGone("no kernel launched for it")
            kernel_dir = make_kernel_dir(self.root, new_env_id())
            connection_file = new_connection_file(kernel_dir, request.connection)
            environ = kernel_environ(request.env or default_env, self.envs.activation(env))
            cwd = request.cwd or str(Path.home())
            proc = launch_ipykernel(env.python_path, kernel_dir, connection_file, request.argv, cwd=cwd,
                                    environ=environ, notice=request.notice)  # fmt: skip
            kernel = self.track(backend, kernel_dir.name, kernel_dir, env, proc)
            info = await wait_connection(proc, connection_file)
            if info is None:
                raise KernelStartError(f"kernel in {env.venv_path} did not start:\n{log_tail(kernel_dir)}")
        except BaseException:  # nothing claimed may outlive a failed launch (nor a cancelled one)
            self._abandon_launch(kernel, proc, kernel_dir, env)
            raise
        kernel.connection = info
        return kernel

    def _abandon_launch(
        self, kernel: LiveKernel | None, proc: subprocess.Popen[bytes] | None, kernel_dir: Path | None, env: PooledEnv
    ) -> None:
        """Undo a launch that failed: its process, kernel dir and env (leased to the daemon)."""
        if kernel is not None:
            self.forget(kernel)
            return
        if proc is not None:
            kill_group(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(1)
        if kernel_dir is not None:
            remove_kernel_dir(kernel_dir)
        self.envs.discard(Path(env.venv_path))

    def hand_out(
        self, kernel: LiveKernel, owner: int | None, *, prestarted: bool, reason: str, refused: str = ""
    ) -> LaunchedKernel:
        """Record ``owner`` as the kernel's owner; what the client gets."""
        owner_created = create_time_of(owner) if owner else None
        kernel.record = record = attrs.evolve(
            kernel.record, state=KernelState.HANDED_OUT, owner_pid=owner, owner_create_time=owner_created
        )
        write_record(kernel.dir, record)
        return LaunchedKernel(
            id=record.id,
            pid=record.pid,
            create_time=record.create_time,
            connection=kernel.connection,
            env=self.env_of(kernel),
            prestarted=prestarted,
            log_file=str(kernel.dir / "kernel.log"),
            reason=reason,
            refused=refused,
        )

    def abandon(self, kernel_id: str) -> None:
        """End a handed-out kernel that nobody got (its client had gone), and forget it."""
        kernel = self.kernels.get(kernel_id)
        if kernel is not None:
            self.forget(kernel)

    def set_owner_grace(self, kernel_id: str, grace_s: float | None) -> None:
        """How long the kernel outlives its owner (None: the daemon's setting)."""
        kernel = self.kernels.get(kernel_id)
        if kernel is not None and kernel.record.owner_grace_s != grace_s:
            kernel.record = attrs.evolve(kernel.record, owner_grace_s=grace_s)
            write_record(kernel.dir, kernel.record)

    def exit_code(self, kernel_id: str, wait_s: float) -> int | None:
        """The kernel's exit status once it ends (waiting up to ``wait_s``; blocking), or
        None: still running, not our child, or unknown."""
        if kernel_id in self.exit_codes:
            return self.exit_codes[kernel_id]
        kernel = self.kernels.get(kernel_id)
        if kernel is None or kernel.proc is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            return kernel.proc.wait(max(0.0, wait_s))
        return None

    def env_of(self, kernel: LiveKernel) -> PooledEnv:
        path = kernel.record.env_path
        return PooledEnv(env_type=kernel.record.backend, venv_path=path, python_path=kernel.env_python, id="")

    def handed_out(self, backend: str) -> int:
        """How many of ``backend``'s kernels are handed out."""
        return sum(
            1 for k in self.kernels.values() if k.record.backend == backend and k.record.state is KernelState.HANDED_OUT
        )

    def alive(self, kernel: LiveKernel) -> bool:
        if kernel.proc is not None and kernel.proc.poll() is not None:
            return False  # our child, now reaped
        return is_alive(kernel.record.pid, kernel.record.create_time)

    def forget(self, kernel: LiveKernel) -> None:
        """End the kernel's process (if ours), delete its dir and discard its env."""
        end_process(kernel)
        if kernel.proc is not None and kernel.proc.returncode is not None:
            self.exit_codes[kernel.record.id] = kernel.proc.returncode
            while len(self.exit_codes) > EXIT_CODES_KEPT:
                self.exit_codes.popitem(last=False)
        self.kernels.pop(kernel.record.id, None)
        remove_kernel_dir(kernel.dir)
        self.envs.discard(Path(kernel.record.env_path))
