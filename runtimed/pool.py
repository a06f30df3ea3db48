"""Pool bookkeeping as a pure state machine: no I/O, no clock, no asyncio.

The supervisor owns one :class:`Pool` per backend and feeds it events (build
started / succeeded / failed, take, resize, drain) together with the current time;
the pool answers what to do next (how many builds to start, which envs to delete,
when to wake up). Keeping it pure lets the rules be tested exhaustively.
"""

from __future__ import annotations

from attrs import define, field

from runtimed.protocol import PooledEnv, PoolError

__all__ = ["MAX_POOL_SIZE", "Backoff", "BuildFailure", "Pool"]

MAX_POOL_SIZE = 20


@define(frozen=True)
class Backoff:
    """Exponential backoff: ``base * factor**(n-1)`` seconds after n failures, capped."""

    base: float = 2.0
    factor: float = 2.0
    cap: float = 300.0

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        return float(min(self.cap, self.base * self.factor ** (failures - 1)))


@define(frozen=True)
class BuildFailure:
    """Why a build failed, classified (see ``runtimed.backend.ErrorKind``)."""

    kind: str
    message: str
    package: str | None = None


@define
class Pool:
    """The state of one backend's pool of prewarmed environments.

    Invariants: an env id is in at most one of ``available`` / ``warming``; an env
    leaves ``available`` only through :meth:`take`, :meth:`drain` or :meth:`resize`,
    each of which hands it to exactly one caller.
    """

    name: str
    target: int
    concurrency: int = 2
    backoff: Backoff = field(factory=Backoff)
    available: list[PooledEnv] = field(factory=list)
    warming: set[str] = field(factory=set)
    failures: int = 0
    last_error: BuildFailure | None = None
    retry_at: float | None = None

    # ------------------------------------------------------------ queries

    def deficit(self) -> int:
        """How many envs are missing: ``target - available - warming``, never negative."""
        return max(0, self.target - len(self.available) - len(self.warming))

    def backing_off(self, now: float) -> bool:
        return self.retry_at is not None and now < self.retry_at

    def builds_to_start(self, now: float) -> int:
        """How many builds to start now. After a failure, probe with one build at a time."""
        if self.backing_off(now):
            return 0
        limit = 1 if self.failures else self.concurrency
        return max(0, min(self.deficit(), limit - len(self.warming)))

    def next_wakeup(self, now: float) -> float | None:
        """When the backoff ends and builds may start again (None if not backing off)."""
        if self.backing_off(now) and self.deficit() > 0:
            return self.retry_at
        return None

    def retry_in(self, now: float) -> float | None:
        """A hint for a client that got ``empty``."""
        if self.target == 0:
            return None
        if self.retry_at is not None and now < self.retry_at:
            return round(self.retry_at - now, 3)
        return 1.0 if self.warming else None

    def error_status(self, now: float) -> PoolError | None:
        if self.last_error is None:
            return None
        return PoolError(
            kind=self.last_error.kind,
            message=self.last_error.message,
            package=self.last_error.package,
            failures=self.failures,
            retry_in_s=round(self.retry_at - now, 3) if self.retry_at is not None and now < self.retry_at else None,
        )

    # ------------------------------------------------------------ events

    def build_started(self, env_id: str) -> None:
        if env_id in self.warming or any(e.id == env_id for e in self.available):
            raise ValueError(f"env {env_id} is already in pool {self.name}")
        self.warming.add(env_id)

    def build_succeeded(self, env: PooledEnv) -> bool:
        """A build finished. Returns False if the env is surplus (caller deletes it)."""
        self.warming.discard(env.id)
        self.failures = 0
        self.last_error = None
        self.retry_at = None
        if len(self.available) >= self.target:
            return False
        self.available.append(env)
        return True

    def build_failed(self, env_id: str, failure: BuildFailure, now: float) -> None:
        self.warming.discard(env_id)
        self.failures += 1
        self.last_error = failure
        self.retry_at = now + self.backoff.delay(self.failures)

    def adopt(self, env: PooledEnv) -> bool:
        """Pool an env found complete on disk at startup. False if the pool is full."""
        if len(self.available) + len(self.warming) >= self.target:
            return False
        self.available.append(env)
        return True

    def take(self) -> PooledEnv | None:
        """Hand out the oldest available env, exactly once."""
        return self.available.pop(0) if self.available else None

    def drain(self) -> list[PooledEnv]:
        """Remove every available env (flush); the caller deletes them."""
        drained, self.available = self.available, []
        return drained

    def resize(self, target: int) -> list[PooledEnv]:
        """Change the target; returns the available envs now surplus (caller deletes them)."""
        if not 0 <= target <= MAX_POOL_SIZE:
            raise ValueError(f"pool size must be between 0 and {MAX_POOL_SIZE}, got {target}")
        self.target = target
        keep = max(0, target)
        surplus, self.available = self.available[keep:], self.available[:keep]
        return surplus

    def reset_backoff(self) -> None:
        """Forget failures (config changed, or the user asked for a rebuild)."""
        self.failures = 0
        self.last_error = None
        self.retry_at = None
