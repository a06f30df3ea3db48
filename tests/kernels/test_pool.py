"""The pure bookkeeping of pre-started kernels."""

from __future__ import annotations

from runtimed.kernels.pool import BACKOFF_BASE_S, REFILL_DELAY_S, KernelPool


def test_deficit_counts_starting_kernels_and_take_hands_out_once() -> None:
    pool = KernelPool(target=2)
    assert pool.deficit(0) == 2
    pool.start("a")
    assert pool.deficit(0) == 1
    pool.start("b")
    assert pool.deficit(0) == 0
    assert pool.ready("a") and pool.ready("b")
    assert pool.take(10.0) == "a"
    assert pool.deficit(10.0 + REFILL_DELAY_S) == 1  # refill after a hand-out
    assert pool.take(20.0) == "b" and pool.take(20.0) is None


def test_refill_waits_a_moment_after_a_hand_out() -> None:
    """The kernel just handed out gets the cores while its client connects."""
    pool = KernelPool(target=1)
    pool.start("a")
    pool.ready("a")
    assert pool.take(50.0) == "a"
    assert pool.deficit(50.0) == 0 and pool.deficit(50.0 + REFILL_DELAY_S / 2) == 0
    assert pool.next_start_at == 50.0 + REFILL_DELAY_S
    assert pool.deficit(50.0 + REFILL_DELAY_S) == 1
    assert pool.take(60.0) is None and pool.next_start_at == 50.0 + REFILL_DELAY_S  # nothing handed out


def test_failures_back_off_and_success_resets() -> None:
    pool = KernelPool(target=1)
    pool.start("a")
    pool.failed("a", "boom", now=100.0)
    assert pool.deficit(100.0) == 0 and pool.last_error == "boom"
    assert pool.deficit(100.0 + BACKOFF_BASE_S) == 1
    pool.start("b")
    pool.failed("b", "boom", now=200.0)
    assert pool.deficit(200.0 + BACKOFF_BASE_S) == 0  # doubled
    pool.start("c")
    assert pool.ready("c") and pool.failures == 0 and pool.last_error is None


def test_surplus_on_ready_and_resize() -> None:
    pool = KernelPool(target=1)
    pool.start("a")
    pool.start("b")
    assert pool.ready("a")
    assert not pool.ready("b")  # not wanted: the caller stops it
    assert pool.resize(0) == ["a"] and pool.take(0) is None
    pool.resize(2)
    pool.start("c")
    pool.ready("c")
    pool.lost("c")
    assert pool.deficit(0) == 2 and pool.drain() == []
