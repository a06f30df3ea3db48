"""The worker handle's side of the restart policy: every ``[supervision]`` key the
policy reads reaches it, at start and on a reload (no worker process is started)."""

from __future__ import annotations

from pathlib import Path

import attrs

from runtimed.config import SupervisionConfig
from runtimed.core.restarts import RestartLimits
from runtimed.protocol.jobs import Ready
from runtimed.workers.handle import WorkerHandle, restart_limits

DISTINCT = SupervisionConfig(
    start_grace_s=1.5,
    restart_base_s=2.5,
    restart_cap_s=3.5,
    max_restarts=4,
    restart_window_s=5.5,
    failed_cooldown_s=6.5,
)


async def _ignore(_ready: Ready) -> None:
    return None


def test_every_restart_limit_comes_from_the_same_supervision_key() -> None:
    limits = attrs.asdict(restart_limits(DISTINCT))
    assert limits == {name: getattr(DISTINCT, name) for name in attrs.fields_dict(RestartLimits)}


def test_a_reloaded_supervision_reaches_the_next_decision(tmp_path: Path) -> None:
    handle = WorkerHandle("toy", tmp_path, 1, SupervisionConfig(), on_ready=_ignore)
    handle.supervision = DISTINCT
    restart = handle._policy.died(0.0, 0.0)  # what run() asks after a death
    assert (restart.delay_s, handle.restarts) == (DISTINCT.restart_base_s, 1)
    assert handle.supervision is DISTINCT
