"""Garbage collection, planned purely: which envs on disk go, and why.

The supervisor scans the env directory (in a thread, :func:`runtimed.envs.envdir.scan_disk`),
snapshots what it tracks and calls :func:`plan_gc` on the event loop, then executes the plan in the same tick,
so nothing can be taken or finish building between plan and deletion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from attrs import define, field

from runtimed.core.convert import StrEnum
from runtimed.core.records import Lease, Manifest

__all__ = [
    "DiskEnv",
    "GcPlanItem",
    "Reason",
    "State",
    "Tracked",
    "env_state",
    "plan_gc",
]


class Reason(StrEnum):
    """Why a GC sweep deletes an env."""

    EXPIRED = "expired"  # pooled longer than max_age
    PARTIAL = "partial"  # no manifest and no build running
    UNTRACKED = "untracked"  # complete, but neither pooled, leased nor kept (e.g. surplus)
    HOLDER_GONE = "holder_gone"  # leased to a process that has exited


class State(StrEnum):
    """What an env on disk is, from the supervisor's point of view."""

    POOLED = "pooled"
    OUTDATED = "outdated"
    WARMING = "warming"
    LEASED = "leased"
    KEPT = "kept"
    ORPHAN = "orphan"
    UNKNOWN_BACKEND = "unknown_backend"


@define(frozen=True)
class DiskEnv:
    """An env directory as found on disk."""

    backend: str
    id: str
    path: Path
    manifest: Manifest | None
    lease: Lease | None
    age_s: float


@define(frozen=True)
class Tracked:
    """A snapshot of what the supervisor tracks."""

    backends: frozenset[str]
    pooled: frozenset[str] = frozenset()  # env ids, current
    outdated: frozenset[str] = frozenset()
    warming: frozenset[str] = frozenset()
    leased: frozenset[Path] = frozenset()
    max_age_s: Mapping[str, float] = field(factory=dict)


@define(frozen=True)
class GcPlanItem:
    env: DiskEnv
    reason: Reason


def env_state(env: DiskEnv, tracked: Tracked) -> State:
    """What an env on disk is, from the supervisor's point of view."""
    if env.backend not in tracked.backends:
        return State.UNKNOWN_BACKEND
    if env.path in tracked.leased:  # taken after the disk scan: the scan saw no lease yet
        return State.LEASED
    if env.lease is not None:
        return State.KEPT if env.lease.keep else State.LEASED
    if env.id in tracked.warming:
        return State.WARMING
    if env.id in tracked.pooled:
        return State.POOLED
    if env.id in tracked.outdated:
        return State.OUTDATED
    return State.ORPHAN


def plan_gc(envs: list[DiskEnv], tracked: Tracked, holder_alive: Callable[[Lease], bool]) -> list[GcPlanItem]:
    """The envs to delete. Never a warming, kept or live-leased env, nor one of a
    backend that is not loaded (its plugin may just be broken today)."""
    plan = []
    for env in envs:
        state = env_state(env, tracked)
        reason: Reason | None = None
        if state == State.LEASED:
            if env.lease is not None and not holder_alive(env.lease):
                reason = Reason.HOLDER_GONE
        elif state in (State.POOLED, State.OUTDATED):
            if env.age_s > tracked.max_age_s.get(env.backend, float("inf")):
                reason = Reason.EXPIRED
        elif state == State.ORPHAN:
            reason = Reason.PARTIAL if env.manifest is None else Reason.UNTRACKED
        if reason is not None:
            plan.append(GcPlanItem(env=env, reason=reason))
    return plan
