"""Property-based test of the pool state machine (hypothesis): random interleavings of
builds finishing and failing, takes, worker crashes, resizes and flushes keep the
invariants. The machine keeps its own model of failures and backoff and checks the
pool against it; a worker crash is fed exactly as the supervisor feeds it
(``back_off=False``: the worker's restart backoff throttles instead)."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from runtimed.config import MAX_POOL_SIZE
from runtimed.core.failure import ErrorKind
from runtimed.core.failure import Failure as BuildFailure
from runtimed.core.pool import Pool
from runtimed.core.records import Manifest, ReadyEnv

FAIL = BuildFailure(kind=ErrorKind.NETWORK, message="down")


class PoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.ids = (f"e{i}" for i in itertools.count())
        self.handed_out: set[str] = set()
        self.deleted: set[str] = set()
        self.pooled_ever: set[str] = set()
        self.failures = 0  # the model: failures in a row, and when builds may resume
        self.retry_at: float | None = None

    @initialize(size=st.integers(0, MAX_POOL_SIZE), concurrency=st.integers(1, 4))
    def setup(self, size: int, concurrency: int) -> None:
        self.pool = Pool(name="uv", target=size, concurrency=concurrency)

    @rule()
    def fill(self) -> None:
        n = self.pool.builds_to_start(self.now)
        for _ in range(n):
            self.pool.build_started(next(self.ids))
        if n:
            # Deficit never over-builds, concurrency is respected.
            assert len(self.pool.available) + len(self.pool.warming) <= self.pool.target
            assert len(self.pool.warming) <= self.pool.concurrency

    @precondition(lambda self: self.pool.warming)
    @rule(data=st.data())
    def build_done(self, data: st.DataObject) -> None:
        env_id = data.draw(st.sampled_from(sorted(self.pool.warming)))
        env = ReadyEnv(Path(f"/e/{env_id}"), Manifest(env_type="uv", id=env_id, spec_hash="h", python_path="p"))
        self.pooled_ever.add(env_id)
        for gone in self.pool.build_succeeded(env):
            self.deleted.add(gone.id)
        self.failures, self.retry_at = 0, None

    @precondition(lambda self: self.pool.warming)
    @rule(data=st.data())
    def build_failed(self, data: st.DataObject) -> None:
        env_id = data.draw(st.sampled_from(sorted(self.pool.warming)))
        self.pool.build_failed(env_id, FAIL, self.now)
        self.deleted.add(env_id)
        self.failures += 1
        self.retry_at = self.now + self.pool.backoff.delay(self.failures)

    @rule()
    def worker_crash(self) -> None:
        for env_id in sorted(self.pool.warming):
            self.pool.build_failed(env_id, BuildFailure(ErrorKind.CRASHED, "worker died"), self.now, back_off=False)
            self.deleted.add(env_id)
            self.failures += 1
            self.retry_at = None

    @rule()
    def take(self) -> None:
        env = self.pool.take()
        if env is not None:
            assert env.id not in self.handed_out, "handed out twice"
            assert env.id in self.pooled_ever and env.id not in self.deleted
            self.handed_out.add(env.id)

    @rule(size=st.integers(0, MAX_POOL_SIZE))
    def resize(self, size: int) -> None:
        for env in self.pool.resize(size):
            self.deleted.add(env.id)

    @rule()
    def config_changed(self) -> None:
        self.pool.mark_outdated()
        self.failures, self.retry_at = 0, None

    @rule(data=st.data())
    def too_old(self, data: st.DataObject) -> None:
        ids = {e.id for e in self.pool.pooled}
        chosen = data.draw(st.sets(st.sampled_from(sorted(ids)))) if ids else set()
        for env in self.pool.retire(chosen):
            self.deleted.add(env.id)

    @rule()
    def flush(self) -> None:
        for env in self.pool.drain():
            self.deleted.add(env.id)

    @rule(seconds=st.floats(0, 400))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @invariant()
    def consistent(self) -> None:
        if not hasattr(self, "pool"):
            return
        available = [e.id for e in self.pool.pooled]
        assert len(available) == len(set(available))
        assert not set(available) & self.pool.warming
        assert not set(available) & self.handed_out
        assert not set(available) & self.deleted
        assert len(self.pool.available) <= self.pool.target
        assert set(available) <= self.pooled_ever
        # Failures and backoff follow the model.
        assert self.pool.failures == self.failures
        assert self.pool.retry_at == self.retry_at
        backing_off = self.retry_at is not None and self.now < self.retry_at
        starts = self.pool.builds_to_start(self.now)
        missing = self.pool.target - len(self.pool.available) - len(self.pool.warming)
        if backing_off:
            assert starts == 0, "built during a backoff"
        elif missing > 0 and not self.pool.warming:
            assert starts >= 1, "a pool short of envs with nothing building starts no build (wedged)"
        if self.failures and not backing_off:
            assert starts <= 1, "after a failure, probe with one build at a time"
        assert starts <= max(0, missing), "over-building"


PoolMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
TestPoolMachine = PoolMachine.TestCase
