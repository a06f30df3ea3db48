"""``status --watch`` rendering and its loop, in-process (the real-daemon run is in test_stats.py)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from runtimed.cli.status import CLEAR, render_live, watch
from runtimed.protocol import DaemonInfo, PoolError, PoolStatus, StatusReply
from runtimed.protocol_stats import BuildStatus

REPLY = StatusReply(
    daemon=DaemonInfo(pid=1, version="0", protocol_version=1, started_at="t", socket="s", cache_dir="c"),
    pools={
        "uv": PoolStatus(
            available=0,
            warming=2,
            target=2,
            builds=[
                BuildStatus(env_id="aaa", phase="compiling", elapsed_s=4.25, phase_elapsed_s=1.0, message="bytecode"),
                BuildStatus(env_id="bbb", phase=None, elapsed_s=0.0),
            ],
        ),
        "conda": PoolStatus(
            available=0,
            warming=0,
            target=1,
            error=PoolError(kind="network", message="offline", failures=3, retry_in_s=12.4),
        ),
    },
)


class Statuses:
    """Answers ``status`` ``n`` times, then the user presses Ctrl-C."""

    def __init__(self, n: int) -> None:
        self.left = n

    def status(self) -> StatusReply:
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return REPLY

    def close(self) -> None:
        pass


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_render_live_shows_builds_phases_and_retry_countdowns() -> None:
    text = render_live(REPLY)
    build = next(line for line in text.splitlines() if "aaa" in line).split()
    assert build == ["uv", "aaa", "compiling", "1.0s", "4.2s", "bytecode"]
    assert next(line for line in text.splitlines() if "bbb" in line).split()[2:4] == ["starting", "-"]
    failures = text.split("RETRY IN")[1]  # the failures table comes last
    assert failures.split() == ["conda", "network", "3", "12s"]


@pytest.mark.parametrize("tty", [True, False])
def test_watch_redraws_until_ctrl_c_and_exits_0(tty: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("runtimed.cli.status.time.sleep", lambda _s: None)
    out: Any = Terminal() if tty else io.StringIO()
    assert watch(Statuses(3), 0.5, out) == 0  # type: ignore[arg-type]
    text = out.getvalue()
    assert text.count("every 0.5s") == 3 and text.count("aaa") == 3
    assert text.count(CLEAR) == (3 if tty else 0)  # plain snapshots when not a terminal
