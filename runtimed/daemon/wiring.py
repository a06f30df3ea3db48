"""The supervisor's collaborators, built once by :func:`wire` and handed to it.

Each part gets only what it needs, as values or bound methods of parts built before
it: the task set, the stop flag, the lease table and the session first; then the
env files (delete, measure), the builder (carrying out the pools' decisions), the
adopter, housekeeping, the taker and the kernel keeper. The runtimes (one per
backend) are added by :meth:`runtimed.daemon.supervisor.Supervisor.start`.
"""

from __future__ import annotations

import asyncio

from attrs import frozen

from runtimed.config import Config
from runtimed.core.usage import Usage, UsageLog
from runtimed.daemon.adoption import Adopter
from runtimed.daemon.builder import Builder
from runtimed.daemon.envfiles import EnvFiles
from runtimed.daemon.extras import ExtrasTaker
from runtimed.daemon.housekeeping import Housekeeper
from runtimed.daemon.kernelenvs import KernelEnvs
from runtimed.daemon.leasetable import LeaseTable
from runtimed.daemon.projects import ProjectServer
from runtimed.daemon.runtime import BackendRuntime, PoolsView
from runtimed.daemon.session import Session, session_path
from runtimed.daemon.taking import Taker
from runtimed.envs.bytecode_store import store_path
from runtimed.kernels.keeper import KernelKeeper
from runtimed.util.files import now_iso
from runtimed.util.paths import Paths
from runtimed.util.tasks import TaskSet

__all__ = ["CurrentConfig", "Parts", "wire"]


class CurrentConfig:
    """The config in force: replaced on reload, read by parts that outlive a reload."""

    def __init__(self, config: Config) -> None:
        self.value = config

    def kernel_owner_grace_s(self) -> float:
        return self.value.daemon.kernel_owner_grace_s

    def package_sets(self, backend: str) -> int:
        """How many recently used package sets of ``backend`` keep a pre-started
        kernel: its warm sets, when it keeps pre-started kernels at all."""
        config = self.value.backend(backend)
        return config.warm_sets if config.kernel_target > 0 else 0


@frozen
class Parts:
    """Everything the supervisor works with."""

    paths: Paths
    config: CurrentConfig
    usage: UsageLog  # persisted by the daemon (runtimed.daemon.usagefile)
    tasks: TaskSet
    stopping: asyncio.Event  # set once, when the daemon starts shutting down
    runtimes: dict[str, BackendRuntime]  # by backend name, filled by Supervisor.start
    leases: LeaseTable
    session: Session  # leases without fsync
    files: EnvFiles
    builder: Builder
    adopter: Adopter
    housekeeping: Housekeeper
    taker: Taker
    extras: ExtrasTaker
    kernels: KernelKeeper


def wire(paths: Paths, config: Config, usage: UsageLog | None = None) -> Parts:
    """Build the supervisor's parts for ``paths`` and ``config``."""
    current = CurrentConfig(config)
    usage = usage or UsageLog(Usage(since=now_iso()))
    tasks, stopping = TaskSet(), asyncio.Event()
    runtimes: dict[str, BackendRuntime] = {}
    leases = LeaseTable()
    session = Session(session_path(paths.cache_dir), paths.envs)
    files = EnvFiles(trash=paths.trash, leases=leases, tasks=tasks)
    builder = Builder(
        runtimes=runtimes,
        env_path=paths.env_path,
        spawn=tasks.spawn,
        discard=files.discard,
        measure=files.measure,
        stopping=stopping.is_set,
        usage=usage,
        record_pooled=session.pooled,
    )
    adopter = Adopter(
        leases=leases,
        discard=files.discard,
        measure=files.measure,
        spawn=tasks.spawn,
        stopping=stopping.is_set,
        settled=builder.settle,
    )
    pools = PoolsView(runtimes)
    housekeeping = Housekeeper(
        envs_dir=paths.envs,
        trash_dir=paths.trash,
        pools=pools,
        max_age_s=pools.max_age_s,
        leases=leases,
        discard=files.discard,
        refill=builder.carry_out_all,
        adopting=lambda: adopter.pending,
        bytecode_store=store_path(paths.cache_dir),
    )
    taker = Taker(
        runtimes=runtimes,
        leases=leases,
        discard=files.discard,
        write_lease=session.write_lease,
        carry_out=builder.carry_out,
        usage=usage,
        stopping=stopping.is_set,
    )
    extras = taker.extras = ExtrasTaker(
        runtimes=runtimes,
        take_base=taker.take_uncounted,
        leases=leases,
        discard=files.discard,
        write_lease=session.write_lease,
        spawn=tasks.spawn,
        stopping=stopping.is_set,
    )
    trust_file = paths.config_file.with_name("trust.json")
    projects = ProjectServer(runtimes=runtimes, extras=extras, config=lambda: current.value, trust_file=trust_file)
    envs = KernelEnvs(
        take=taker.take_uncounted,  # envs taken for kernels are counted as kernels, not as takes
        leases=leases,
        discard=files.discard,
        stopping=stopping.is_set,
        write_lease=session.write_lease,
        projects=projects,
    )
    kernels = KernelKeeper(
        paths.cache_dir / "kernels",
        envs.access(),
        current.kernel_owner_grace_s,
        config.daemon.kernel_variants,
        package_sets=current.package_sets,
    )
    return Parts(
        paths=paths, config=current, usage=usage, tasks=tasks, stopping=stopping, runtimes=runtimes,
        leases=leases, session=session, files=files, builder=builder, adopter=adopter,
        housekeeping=housekeeping, taker=taker, extras=extras, kernels=kernels,
    )  # fmt: skip
