"""The worker restart policy (runtimed.core.restarts): a table of death sequences with
the decisions they must get, and a hypothesis test against a model that recomputes
every decision from the whole history (no sliding window, no running counters)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtimed.core.restarts import Restart, RestartKind, RestartLimits, RestartPolicy

LIMITS = RestartLimits(
    start_grace_s=3.0,
    restart_base_s=0.5,
    restart_cap_s=4.0,
    max_restarts=3,
    restart_window_s=60.0,
    failed_cooldown_s=300.0,
)
B, C = RestartKind.BACKOFF, RestartKind.COOLDOWN


def decide(deaths: list[tuple[float, float]], limits: RestartLimits = LIMITS) -> list[tuple[RestartKind, float]]:
    """(started, died) pairs -> (kind, delay) of each decision."""
    policy = RestartPolicy(limits)
    return [(r.kind, r.delay_s) for r in (policy.died(started, now) for started, now in deaths)]


def quick(*times: float) -> list[tuple[float, float]]:
    return [(t - 1.0, t) for t in times]  # lived 1s < start_grace_s


TABLE = {
    "quick deaths double the delay": (quick(10, 20, 30), [(B, 0.5), (B, 1.0), (B, 2.0)]),
    "the 4th death in the window fails the worker": (quick(10, 20, 30, 40), [(B, 0.5), (B, 1.0), (B, 2.0), (C, 300)]),
    "the cool-down starts afresh": (
        quick(10, 20, 30, 40, 400, 410),
        [(B, 0.5), (B, 1), (B, 2), (C, 300), (B, 0.5), (B, 1)],
    ),
    "deaths before a cool-down no longer count": (
        quick(10, 20, 30, 40, 41),
        [(B, 0.5), (B, 1), (B, 2), (C, 300), (B, 0.5)],
    ),
    "deaths further apart than the window never fail it": (
        quick(0, 61, 122, 183, 244),
        [(B, 0.5), (B, 1), (B, 2), (B, 4), (B, 4)],
    ),
    "exactly the window apart still counts": (quick(0, 20, 40, 60), [(B, 0.5), (B, 1), (B, 2), (C, 300)]),
    "a worker that lived past the grace resets the backoff": (
        [(9, 10), (19, 20), (0, 75), (79, 80)],
        [(B, 0.5), (B, 1.0), (B, 0.5), (B, 0.5)],
    ),
    "the delay is capped": (
        quick(0, 100, 200, 300, 400, 500),
        [(B, 0.5), (B, 1.0), (B, 2.0), (B, 4.0), (B, 4.0), (B, 4.0)],
    ),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_decisions_table(name: str) -> None:
    deaths, expected = TABLE[name]
    assert decide(deaths) == expected


def test_restart_at_counts_and_limits_follow_a_reload() -> None:
    policy = RestartPolicy(LIMITS)
    first = policy.died(9.0, 10.0)
    assert first == Restart(B, 0.5, 10.5, 1) and not first.failed and policy.restarts == 1
    policy.limits = RestartLimits(3.0, 2.0, 8.0, 1, 60.0, 30.0)  # a reloaded [supervision]
    second = policy.died(19.0, 20.0)
    assert second == Restart(C, 30.0, 50.0, 2) and second.failed and policy.restarts == 2


def model(history: list[tuple[float, float]], limits: RestartLimits) -> list[tuple[RestartKind, float]]:
    """Each decision recomputed from the whole history since the last cool-down."""
    decisions: list[tuple[RestartKind, float]] = []
    since = 0  # index of the first death after the last cool-down
    for i, (_started, now) in enumerate(history):
        recent = history[since : i + 1]
        in_window = [t for _s, t in recent if now - t <= limits.restart_window_s]
        if len(in_window) > limits.max_restarts:
            decisions.append((C, limits.failed_cooldown_s))
            since = i + 1
            continue
        streak = 0
        for started, died in reversed(recent):
            if died - started >= limits.start_grace_s:
                break
            streak += 1
        delay = min(limits.restart_cap_s, limits.restart_base_s * 2 ** (max(1, streak) - 1))
        decisions.append((B, delay))
    return decisions


@st.composite
def histories(draw: st.DrawFn) -> tuple[RestartLimits, list[tuple[float, float]]]:
    limits = RestartLimits(
        start_grace_s=draw(st.sampled_from([0.0, 1.0, 3.0, 10.0])),
        restart_base_s=draw(st.sampled_from([0.0, 0.5, 1.0])),
        restart_cap_s=draw(st.sampled_from([0.0, 2.0, 30.0])),
        max_restarts=draw(st.integers(0, 6)),
        restart_window_s=draw(st.sampled_from([0.0, 5.0, 60.0])),
        failed_cooldown_s=draw(st.sampled_from([0.0, 300.0])),
    )
    now, history = 0.0, []
    for lived, pause in draw(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 40)), max_size=40)):
        started = now + pause
        now = started + lived
        history.append((started, now))
    return limits, history


@settings(max_examples=500)
@given(histories())
def test_policy_matches_the_whole_history_model(case: tuple[RestartLimits, list[tuple[float, float]]]) -> None:
    limits, history = case
    assert decide(history, limits) == model(history, limits)
