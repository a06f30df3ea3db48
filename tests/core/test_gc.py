"""The pure GC planner: what goes, why, and what never does."""

from __future__ import annotations

from pathlib import Path

from runtimed.core.gc import DiskEnv, Reason, State, Tracked, env_state, plan_gc
from runtimed.envs.envdir import Lease, Manifest

M = Manifest(env_type="uv", id="x", spec_hash="h", python_path="p")


def disk(
    env_id: str, *, complete: bool = True, lease: Lease | None = None, age: float = 10, backend: str = "uv"
) -> DiskEnv:
    return DiskEnv(backend=backend, id=env_id, path=Path(f"/c/envs/runtimed-{backend}-{env_id}"),
                   manifest=M if complete else None, lease=lease, age_s=age)  # fmt: skip


LIVE = Lease(pid=1, create_time=1.0, taken_at="t")
DEAD = Lease(pid=2, create_time=2.0, taken_at="t")
KEPT = Lease(pid=3, create_time=3.0, taken_at="t", keep=True)


def alive(lease: Lease) -> bool:
    return lease.pid == 1


def test_plan_covers_every_reason_and_spares_the_rest() -> None:
    envs = [
        disk("pooled"),
        disk("old", age=1000),
        disk("old-fallback", age=1000),
        disk("warming", complete=False),
        disk("partial", complete=False),
        disk("surplus"),
        disk("leased-live", lease=LIVE),
        disk("leased-dead", lease=DEAD),
        disk("kept", lease=KEPT, age=10**6),
        disk("alien", complete=False, backend="pixi"),
    ]
    tracked = Tracked(
        backends=frozenset({"uv"}),
        pooled=frozenset({"pooled", "old"}),
        outdated=frozenset({"old-fallback"}),
        warming=frozenset({"warming"}),
        leased=frozenset({envs[6].path, envs[7].path}),
        max_age_s={"uv": 100},
    )
    plan = {item.env.id: item.reason for item in plan_gc(envs, tracked, alive)}
    assert plan == {
        "old": Reason.EXPIRED,
        "old-fallback": Reason.EXPIRED,
        "partial": Reason.PARTIAL,
        "surplus": Reason.UNTRACKED,
        "leased-dead": Reason.HOLDER_GONE,
    }
    states = {e.id: env_state(e, tracked) for e in envs}
    assert states["kept"] == State.KEPT and states["alien"] == State.UNKNOWN_BACKEND
    assert states["warming"] == State.WARMING and states["leased-live"] == State.LEASED


def test_nothing_expires_without_max_age() -> None:
    tracked = Tracked(backends=frozenset({"uv"}), pooled=frozenset({"a"}))
    assert plan_gc([disk("a", age=10**9)], tracked, alive) == []


def test_env_taken_after_the_scan_counts_as_leased() -> None:
    env = disk("a")  # the scan saw it pooled, without a lease
    tracked = Tracked(backends=frozenset({"uv"}), leased=frozenset({env.path}))
    assert env_state(env, tracked) == State.LEASED
    assert plan_gc([env], tracked, alive) == []
