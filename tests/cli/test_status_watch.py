"""``status --watch`` rendering and its loop, in-process; a real daemon restarted under a
running watch (the real-daemon build phases are in test_stats.py)."""

from __future__ import annotations

import io
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runtimed.cli.status import CLEAR, render_live, watch
from runtimed.client import DaemonAbsent, DaemonUntrusted
from runtimed.protocol.messages import DaemonInfo, PoolError, PoolStatus, StatusReply
from runtimed.protocol.stats import BuildStatus
from tests.cli.test_stats import read_until
from tests.support.daemon import DaemonProcess, runtimed_cmd

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

    def __init__(self, n: int, gone: tuple[int, ...] = (), error: Exception | None = None) -> None:
        self.left = n
        self.gone = gone  # the polls (counting down) at which no daemon answers
        self.error = error or DaemonAbsent("no runtimed daemon at s (connection refused)")

    def status(self) -> StatusReply:
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        if self.left in self.gone:
            raise self.error
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


def test_watch_says_when_no_daemon_answers_and_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("runtimed.cli.status.time.sleep", lambda _s: None)
    out = io.StringIO()
    assert watch(Statuses(4, gone=(2, 1)), 0.5, out) == 0  # type: ignore[arg-type]
    views = out.getvalue().split("(Ctrl-C to stop)")[1:]
    assert ["not running" in v for v in views] == [False, True, True, False]
    assert "runtimed is not running (no runtimed daemon at s (connection refused)); trying again" in views[1]


def test_watch_ends_on_a_socket_of_another_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("runtimed.cli.status.time.sleep", lambda _s: None)
    with pytest.raises(DaemonUntrusted):
        watch(Statuses(3, gone=(1,), error=DaemonUntrusted("served by uid 0")), 0.5, io.StringIO())  # type: ignore[arg-type]


@pytest.mark.slow
def test_watch_goes_on_through_a_daemon_restart(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    daemon = daemon_factory().start()
    first = daemon.daemon_json()["pid"]
    watch = subprocess.Popen(
        runtimed_cmd("status", "--watch", "--interval", "0.2"),
        env=daemon.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        read_until(watch, lambda text: f"(pid {first})" in text, timeout=60)
        daemon.stop()
        read_until(watch, lambda text: "runtimed is not running" in text, timeout=60)
        second = daemon.start().daemon_json()["pid"]
        read_until(watch, lambda text: f"(pid {second})" in text, timeout=60)
        watch.send_signal(signal.SIGINT)
        _, stderr = watch.communicate(timeout=20)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert watch.returncode == 0, stderr
    assert "Traceback" not in stderr
