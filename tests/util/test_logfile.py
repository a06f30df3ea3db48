"""Reading the rotating log: tails across rotated files, following across rotation."""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtimed.util.logfile import LogFollower, last_lines, log_files


@pytest.fixture
def handler(tmp_path: Path) -> Iterator[logging.Logger]:
    """The same handler class and settings shape the daemon uses, on a private logger."""
    logger = logging.getLogger(f"test-logfile-{tmp_path.name}")
    logger.propagate = False
    h = logging.handlers.RotatingFileHandler(tmp_path / "runtimed.log", maxBytes=4096, backupCount=3)
    h.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(h)
    logger.setLevel(logging.INFO)
    yield logger
    logger.removeHandler(h)
    h.close()


def _numbers(lines: list[bytes]) -> list[int]:
    return [int(line.split()[1]) for line in b"".join(lines).splitlines()]


def test_last_lines_reach_into_rotated_files(tmp_path: Path, handler: logging.Logger) -> None:
    for i in range(300):
        handler.info("line %05d %s", i, "x" * 40)
    log = tmp_path / "runtimed.log"
    assert [p.name for p in log_files(log)] == ["runtimed.log", "runtimed.log.1", "runtimed.log.2", "runtimed.log.3"]
    current = len(log.read_bytes().splitlines())
    assert _numbers(last_lines(log, 5)) == [295, 296, 297, 298, 299]
    wanted = current + 30  # more than the current file holds
    assert _numbers(last_lines(log, wanted)) == list(range(300 - wanted, 300))
    assert last_lines(log, 0) == []
    assert last_lines(tmp_path / "missing.log", 10) == []


def test_last_lines_stop_at_the_followers_offset(tmp_path: Path) -> None:
    log = tmp_path / "runtimed.log"
    log.write_bytes(b"a 1\na 2\n")
    follower = LogFollower(log)
    with log.open("ab") as f:
        f.write(b"a 3\n")
    assert last_lines(log, 10, current_end=follower.position) == [b"a 1\n", b"a 2\n"]
    assert follower.read() == b"a 3\n"  # shown once, by the follower
    follower.close()


def test_follower_crosses_rotation_and_truncation(tmp_path: Path, handler: logging.Logger) -> None:
    log = tmp_path / "runtimed.log"
    handler.info("before 0")
    follower = LogFollower(log)
    seen = b""
    count = 0
    for _burst in range(6):  # each burst is ~half a file: several rotations overall
        for _ in range(40):
            count += 1
            handler.info("line %05d %s", count, "y" * 30)
        seen += follower.read()
    assert len(log_files(log)) >= 3  # it rotated more than once
    assert _numbers([seen]) == list(range(1, count + 1))  # every line once, in order
    log.write_bytes(b"")  # truncated in place (copytruncate-style)
    assert follower.read() == b""
    with log.open("ab") as f:
        f.write(b"after truncation\n")
    assert follower.read() == b"after truncation\n"
    follower.close()


def test_follower_waits_for_a_file_that_does_not_exist_yet(tmp_path: Path) -> None:
    log = tmp_path / "runtimed.log"
    follower = LogFollower(log)
    assert follower.read() == b"" and follower.position is None
    log.write_bytes(b"first\n")
    assert follower.read() == b"first\n"
    follower.close()
