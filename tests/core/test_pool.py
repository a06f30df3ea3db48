"""The pure pool state machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtimed.core.backoff import Backoff
from runtimed.core.failure import ErrorKind
from runtimed.core.failure import Failure as BuildFailure
from runtimed.core.pool import Pool
from runtimed.core.records import Manifest, ReadyEnv


def env(i: str) -> ReadyEnv:
    return ReadyEnv(Path(f"/e/{i}"), Manifest(env_type="uv", id=i, spec_hash="h", python_path=f"/e/{i}/bin/python"))


FAIL = BuildFailure(kind=ErrorKind.NETWORK, message="down")


def test_deficit_counts_available_and_warming() -> None:
    pool = Pool(name="uv", target=3, concurrency=5)
    assert pool.builds_to_start(0) == 3
    pool.build_started("a")
    pool.build_started("b")
    assert pool.deficit() == 1
    pool.build_succeeded(env("a"))
    assert pool.deficit() == 1 and pool.builds_to_start(0) == 1


def test_concurrency_limits_builds() -> None:
    pool = Pool(name="uv", target=5, concurrency=2)
    assert pool.builds_to_start(0) == 2
    pool.build_started("a")
    assert pool.builds_to_start(0) == 1


def test_take_counts_the_rebuild_at_once() -> None:
    pool = Pool(name="uv", target=1, concurrency=2)
    pool.build_started("a")
    pool.build_succeeded(env("a"))
    assert pool.take() == env("a")
    assert pool.take() is None
    assert pool.builds_to_start(0) == 1
    pool.build_started("b")
    assert pool.builds_to_start(0) == 0  # no over-building


def test_take_hands_out_oldest_first_and_once() -> None:
    pool = Pool(name="uv", target=2, concurrency=2)
    for i in "ab":
        pool.build_started(i)
        pool.build_succeeded(env(i))
    assert [pool.take(), pool.take(), pool.take()] == [env("a"), env("b"), None]


def test_surplus_build_is_rejected() -> None:
    pool = Pool(name="uv", target=1, concurrency=2)
    pool.build_started("a")
    pool.build_started("b")
    assert pool.build_succeeded(env("a")) == []
    assert pool.build_succeeded(env("b")) == [env("b")]  # surplus: the caller deletes it
    assert pool.available == [env("a")]


def test_outdated_envs_serve_as_fallbacks_until_replaced() -> None:
    pool = Pool(name="uv", target=2, concurrency=2)
    pool.adopt(env("a"))
    pool.adopt(env("b"))
    pool.mark_outdated()  # the config changed
    assert pool.deficit() == 2 and pool.builds_to_start(0) == 2
    assert pool.take() == env("a")  # a fallback is better than nothing
    pool.build_started("c")
    pool.build_started("d")
    assert pool.build_succeeded(env("c")) == [env("b")]  # replaced: delete the old one
    assert pool.take() == env("c")
    assert pool.build_succeeded(env("d")) == []
    assert pool.outdated == [] and pool.available == [env("d")]


def test_adopt_outdated_and_retire() -> None:
    pool = Pool(name="uv", target=1)
    assert pool.adopt(env("a"), current=False) is True
    assert pool.adopt(env("b"), current=False) is False
    assert pool.adopt(env("c")) is True
    assert pool.pooled == [env("c"), env("a")]
    assert pool.retire({"a", "zzz"}) == [env("a")]
    assert pool.pooled == [env("c")]


def test_failures_back_off_exponentially_and_probe_one_at_a_time() -> None:
    pool = Pool(name="conda", target=2, concurrency=2, backoff=Backoff(base=2, factor=2, cap=10))
    pool.build_started("a")
    pool.build_failed("a", FAIL, now=100)
    assert pool.builds_to_start(101) == 0 and pool.next_wakeup(101) == 102
    assert pool.error_status(101).retry_in_s == 1  # type: ignore[union-attr]
    assert pool.builds_to_start(102) == 1  # a single probe after a failure
    pool.build_started("b")
    pool.build_failed("b", FAIL, now=102)
    assert pool.retry_at == 106
    for i in range(5):
        pool.build_started(f"c{i}")
        pool.build_failed(f"c{i}", FAIL, now=200)
    assert pool.retry_at == 210  # capped
    status = pool.error_status(200)
    assert status is not None and status.failures == 7 and status.kind == "network"


def test_success_clears_the_error() -> None:
    pool = Pool(name="uv", target=1)
    pool.build_started("a")
    pool.build_failed("a", FAIL, now=0)
    pool.build_started("b")
    pool.build_succeeded(env("b"))
    assert pool.error_status(0) is None and pool.failures == 0


def test_adopt_up_to_target() -> None:
    pool = Pool(name="uv", target=2)
    assert [pool.adopt(env(i)) for i in "abc"] == [True, True, False]


def test_resize_returns_surplus_and_validates() -> None:
    pool = Pool(name="uv", target=3)
    for i in "abc":
        pool.adopt(env(i))
    assert pool.resize(1) == [env("b"), env("c")]
    assert pool.available == [env("a")]
    with pytest.raises(ValueError):
        pool.resize(21)


def test_disabled_pool_builds_nothing() -> None:
    pool = Pool(name="uv", target=0)
    assert pool.builds_to_start(0) == 0 and pool.retry_in(0) is None


def test_duplicate_build_id_is_refused() -> None:
    pool = Pool(name="uv", target=2)
    pool.build_started("a")
    with pytest.raises(ValueError):
        pool.build_started("a")


def test_drain_empties_available() -> None:
    pool = Pool(name="uv", target=2)
    pool.adopt(env("a"))
    assert pool.drain() == [env("a")] and pool.available == []


def test_failure_without_backoff_keeps_the_error_but_retries_at_once() -> None:
    pool = Pool(name="uv", target=2, concurrency=2)
    pool.build_started("a")
    pool.build_failed("a", BuildFailure(ErrorKind.CRASHED, "worker died"), now=0, back_off=False)
    assert pool.builds_to_start(0) == 1 and pool.error_status(0).kind == "crashed"  # type: ignore[union-attr]
