"""The pure usage model: histograms and their percentiles, and recording events."""

from __future__ import annotations

import random

import pytest

from runtimed.core.failure import ErrorKind
from runtimed.core.phases import BuildPhase
from runtimed.core.usage import (
    BUCKETS,
    Histogram,
    Usage,
    UsageLog,
    bucket_of,
    percentile,
    record_build,
    record_build_failure,
    record_kernel,
    record_take,
)


def test_buckets_are_log_spaced_and_bounded() -> None:
    assert bucket_of(0) == 0 and bucket_of(0.001) == 0 and bucket_of(-5) == 0 and bucket_of(float("nan")) == 0
    assert bucket_of(0.002) == 4  # 4 buckets per doubling
    assert bucket_of(0.0021) == 5
    assert bucket_of(10**9) == BUCKETS - 1
    assert all(bucket_of(x / 1000) <= bucket_of((x + 1) / 1000) for x in range(5000))


def test_empty_histogram_has_no_percentiles() -> None:
    h = Histogram()
    assert percentile(h, 0.5) is None and h.mean_s is None


def test_one_value_is_exact() -> None:
    h = Histogram()
    for _ in range(3):
        h.add(0.137)
    assert percentile(h, 0.5) == percentile(h, 0.99) == pytest.approx(0.137)
    assert h.count == 3 and h.mean_s == pytest.approx(0.137)


def test_percentiles_within_ten_percent_of_exact() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(-1, 1.5) for _ in range(5000)]
    h = Histogram()
    for v in values:
        h.add(v)
    ordered = sorted(values)
    for q in (0.5, 0.9, 0.99):
        exact = ordered[int(q * len(ordered)) - 1]
        estimate = percentile(h, q)
        assert estimate is not None and abs(estimate - exact) / exact < 0.10, (q, estimate, exact)
    assert percentile(h, 1.0) == max(values)
    assert len(h.buckets) <= BUCKETS  # bounded however many values


def test_percentiles_are_ordered_and_clamped() -> None:
    h = Histogram()
    for v in (0.01, 0.02, 5.0):
        h.add(v)
    p50, p90, p99 = (percentile(h, q) for q in (0.5, 0.9, 0.99))
    assert p50 is not None and p90 is not None and p99 is not None
    assert 0.01 <= p50 <= p90 <= p99 <= 5.0
    assert p99 == 5.0  # the top bucket's estimate is clamped to the largest value


def test_bad_durations_are_recorded_as_zero() -> None:
    h = Histogram()
    h.add(float("inf"))
    h.add(-1.0)
    assert h.count == 2 and h.max_s == 0.0 and percentile(h, 0.5) == 0.0


def test_recording_events() -> None:
    usage = Usage(since="t")
    record_take(usage, "uv", served=True, wait_s=None)
    record_take(usage, "uv", served=True, wait_s=0.5)
    record_take(usage, "uv", served=False, wait_s=2.0)
    record_take(usage, "uv", served=False, wait_s=None)
    takes = usage.backends["uv"].takes
    assert (takes.served, takes.empty, takes.waited, takes.wait_s.count) == (2, 2, 2, 2)
    assert takes.wait_s.max_s == 2.0
    record_kernel(usage, "uv", prestarted=True)
    record_kernel(usage, "uv", prestarted=False)
    record_kernel(usage, "uv", prestarted=None)
    kernels = usage.backends["uv"].kernels
    assert (kernels.prestarted, kernels.fallback, kernels.failed) == (1, 1, 1)
    record_build(usage, "conda", {BuildPhase.INSTALLING: 3.0, BuildPhase.WARMING_UP: 1.0}, 4.5)
    record_build_failure(usage, "conda", ErrorKind.NETWORK)
    record_build_failure(usage, "conda", ErrorKind.NETWORK)
    builds = usage.backends["conda"].builds
    assert (builds.succeeded, builds.failed) == (1, 2)
    assert set(builds.phase_s) == {"installing", "warming_up"} and builds.total_s.max_s == 4.5
    assert usage.backends["conda"].failures == {"network": 2}
    assert set(usage.backends) == {"uv", "conda"}


def test_usage_log_counts_changes() -> None:
    log = UsageLog(Usage(since="t"))
    log.take("uv", served=True, wait_s=None)
    log.build_failed("uv", ErrorKind.TIMEOUT)
    log.kernel("uv", prestarted=True)
    log.build("uv", {}, 1.0)
    assert log.changes == 4 and log.usage.backends["uv"].builds.succeeded == 1
