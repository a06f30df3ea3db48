"""stats.json: saved atomically, loaded back, a corrupt file replaced (never fatal)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from runtimed.core.failure import ErrorKind
from runtimed.core.phases import BuildPhase
from runtimed.core.usage import Usage, UsageLog
from runtimed.daemon.statsview import stats_reply
from runtimed.daemon.usagefile import UsageFile, parse


def sample() -> UsageLog:
    log = UsageLog(Usage(since="2026-01-01T00:00:00.000+00:00"))
    log.take("uv", served=True, wait_s=0.25)
    log.take("uv", served=False, wait_s=None)
    log.kernel("uv", prestarted=False)
    log.build("uv", {BuildPhase.CREATING: 0.1, BuildPhase.WARMING_UP: 0.3}, 0.5)
    log.build_failed("conda", ErrorKind.NETWORK)
    return log


def test_round_trip(tmp_path: Path) -> None:
    file = UsageFile(tmp_path / "stats.json")
    assert file.read() is None
    log = sample()
    assert file.save(log)
    saved = file.read()
    assert saved is not None and saved.usage == log.usage and saved.saved_at
    assert not list(tmp_path.glob("*.tmp*")), "a temp file was left behind"
    again = file.load()
    again.take("uv", served=True, wait_s=None)
    assert again.usage.backends["uv"].takes.served == 2  # counting goes on from the file


def test_missing_file_starts_fresh(tmp_path: Path) -> None:
    log = UsageFile(tmp_path / "stats.json").load()
    assert log.usage.backends == {} and log.usage.since


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        '{"version": 99, "usage": {}}',
        '{"version": 1, "usage": {"since": 5}}',
        '{"version": 1, "usage": {"since": "t", "backends": {"uv": {"takes": {"served": -3}}}}}',
        '{"version": 1, "usage": {"since": "t", "backends": {"uv": '
        '{"takes": {"wait_s": {"buckets": [1], "count": 7}}}}}}',
        "\udcff",
    ],
)
def test_corrupt_file_is_logged_kept_aside_and_replaced(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "stats.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    file = UsageFile(path)
    with pytest.raises(ValueError):
        file.read()
    with caplog.at_level(logging.ERROR, logger="runtimed.stats"):
        log = file.load()
    assert log.usage.backends == {}
    assert "unusable" in caplog.text
    assert (tmp_path / "stats.json.corrupt").read_bytes() == text.encode("utf-8", "surrogateescape")
    assert not path.exists()
    log.take("uv", served=True, wait_s=None)
    assert file.save(log) and parse(path.read_text()).usage.backends["uv"].takes.served == 1


def test_unwritable_dir_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "a-file").write_text("")
    file = UsageFile(tmp_path / "a-file" / "stats.json")  # its "dir" is a file
    with caplog.at_level(logging.ERROR, logger="runtimed.stats"):
        assert not file.save(sample())
    assert "cannot save" in caplog.text


def test_autosave_writes_only_after_changes(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    file = UsageFile(path)
    log = UsageLog(Usage(since="t"))

    async def main() -> None:
        task = asyncio.create_task(file.autosave(log, interval_s=0.02))
        await asyncio.sleep(0.1)
        assert not path.exists()  # nothing recorded: nothing written
        log.take("uv", served=True, wait_s=None)
        for _ in range(200):
            await asyncio.sleep(0.02)
            if path.exists():
                break
        task.cancel()

    asyncio.run(main())
    assert json.loads(path.read_text())["usage"]["backends"]["uv"]["takes"]["served"] == 1


def test_stats_reply_percentiles_and_disk() -> None:
    reply = stats_reply(sample().usage, file="f", disk={"uv": 1000, "pixi": None}, store_bytes=24)
    uv = reply.backends["uv"]
    assert (uv.takes.served, uv.takes.empty, uv.takes.waited) == (1, 1, 1)
    assert uv.takes.wait_s.p50 == 0.25 and uv.takes.wait_s.count == 1
    assert (uv.kernels.handed_out, uv.kernels.fallback) == (1, 1)
    assert set(uv.builds.phases_s) == {"creating", "warming_up"} and uv.builds.total_s.p99 == 0.5
    assert reply.backends["conda"].failures == {"network": 1} and reply.backends["conda"].disk_bytes is None
    assert reply.backends["pixi"].takes.served == 0  # served, nothing recorded yet
    assert reply.disk_bytes == 1024 and reply.bytecode_store_bytes == 24
