"""Pool bookkeeping as a pure state machine: no I/O, no clock, no asyncio.

The supervisor owns one :class:`Pool` per backend and feeds it events (build
started / succeeded / failed, take, resize, drain) together with the current time;
the pool answers with decisions, h11 style: the envs the caller must delete, and
from :meth:`Pool.fill` the builds to start and when to wake up. The supervisor
carries them out in one place. Keeping it pure lets the rules be tested exhaustively.
"""

from __future__ import annotations

from collections.abc import Callable

from attrs import define, field

from runtimed.core.backoff import Backoff
from runtimed.core.failure import Failure
from runtimed.core.records import ReadyEnv

__all__ = ["MAX_POOL_SIZE", "Fill", "Pool", "PoolFailure"]

MAX_POOL_SIZE = 20  # envs per backend at most (the config's bound too)


@define(frozen=True)
class Fill:
    """What the supervisor must do after :meth:`Pool.fill`: build these envs now
    (already counted as warming) and call ``fill`` again at ``wake_at``."""

    build: tuple[str, ...] = ()
    wake_at: float | None = None


@define(frozen=True)
class PoolFailure:
    """The pool's last failure, how many in a row, and when builds resume."""

    failure: Failure
    failures: int
    retry_in_s: float | None = None

    @property
    def kind(self) -> str:
        return self.failure.kind.value


@define
class Pool:
    """The state of one backend's pool of prewarmed environments.

    Invariants: an env id is in at most one of ``available`` / ``outdated`` /
    ``warming``; an env leaves them only through :meth:`take`, :meth:`drain`,
    :meth:`resize`, :meth:`retire` or :meth:`build_succeeded` (which hands back an
    outdated env it replaces), each of which hands it to exactly one caller.

    ``outdated`` envs were built for an older config: they still serve takes as a
    fallback, but do not count toward the target and are retired one by one as
    their replacements become ready.
    """

    name: str
    target: int
    concurrency: int = 2
    backoff: Backoff = field(factory=Backoff)
    available: list[ReadyEnv] = field(factory=list)
    outdated: list[ReadyEnv] = field(factory=list)
    warming: set[str] = field(factory=set)
    failures: int = 0
    last_error: Failure | None = None
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
        """A hint for a client that got ``empty``: when the backoff ends, if it is
        backing off (a build in flight gives no useful estimate: wait with ``wait_s``)."""
        if self.target == 0 or self.retry_at is None or now >= self.retry_at:
            return None
        return round(self.retry_at - now, 3)

    def error_status(self, now: float) -> PoolFailure | None:
        if self.last_error is None:
            return None
        retry_in = round(self.retry_at - now, 3) if self.retry_at is not None and now < self.retry_at else None
        return PoolFailure(failure=self.last_error, failures=self.failures, retry_in_s=retry_in)

    def fill(self, now: float, new_id: Callable[[], str]) -> Fill:
        """Decide the builds to start now (counted as warming at once, so nothing is
        over-built) and when to come back after a backoff."""
        build = tuple(new_id() for _ in range(self.builds_to_start(now)))
        for env_id in build:
            self.build_started(env_id)
        return Fill(build=build, wake_at=self.next_wakeup(now))

    # ------------------------------------------------------------ events

    def build_started(self, env_id: str) -> None:
        if env_id in self.warming or any(e.id == env_id for e in (*self.available, *self.outdated)):
            raise ValueError(f"env {env_id} is already in pool {self.name}")
        self.warming.add(env_id)

    def build_succeeded(self, env: ReadyEnv) -> list[ReadyEnv]:
        """A build finished and is pooled, unless surplus. Returns the envs the caller
        must delete: the new env itself if surplus, else an outdated env it replaces."""
        self.warming.discard(env.id)
        self.failures = 0
        self.last_error = None
        self.retry_at = None
        if len(self.available) >= self.target:
            return [env]
        self.available.append(env)
        return [self.outdated.pop(0)] if self.outdated else []

    def build_failed(self, env_id: str, failure: Failure, now: float, *, back_off: bool = True) -> None:
        """A build failed. ``back_off=False`` when something else already throttles
        retries (a crashed worker is restarted with its own backoff)."""
        self.warming.discard(env_id)
        self.failures += 1
        self.last_error = failure
        self.retry_at = now + self.backoff.delay(self.failures) if back_off else None

    def build_abandoned(self, env_id: str) -> None:
        """A build (or a validation holding a warming slot) ended without an env and
        without it being the backend's fault (shutdown, config changed)."""
        self.warming.discard(env_id)

    def adopt(self, env: ReadyEnv, *, current: bool = True) -> bool:
        """Pool an env found complete on disk at startup (``current=False``: built for
        an older config, kept as a fallback). False if there is no room for it."""
        if current:
            if len(self.available) + len(self.warming) >= self.target:
                return False
            self.available.append(env)
        else:
            if len(self.outdated) >= self.target:
                return False
            self.outdated.append(env)
        return True

    def take(self) -> ReadyEnv | None:
        """Hand out the oldest current env (else an outdated one), exactly once."""
        if self.available:
            return self.available.pop(0)
        return self.outdated.pop(0) if self.outdated else None

    def put_back(self, env: ReadyEnv, *, outdated: bool = False) -> None:
        """Undo a :meth:`take` whose hand-out failed: the env is first in line again."""
        (self.outdated if outdated else self.available).insert(0, env)

    def drain(self) -> list[ReadyEnv]:
        """Remove every pooled env (flush); the caller deletes them."""
        drained, self.available, self.outdated = [*self.available, *self.outdated], [], []
        return drained

    def retire(self, env_ids: set[str]) -> list[ReadyEnv]:
        """Remove the given pooled envs (e.g. too old); the caller deletes them."""
        gone = [e for e in (*self.available, *self.outdated) if e.id in env_ids]
        self.available = [e for e in self.available if e.id not in env_ids]
        self.outdated = [e for e in self.outdated if e.id not in env_ids]
        return gone

    def mark_outdated(self) -> None:
        """The config changed: current envs become fallbacks until replaced."""
        self.outdated.extend(self.available)
        self.available = []
        self.reset_backoff()

    @property
    def pooled(self) -> list[ReadyEnv]:
        """Every env that a take could hand out."""
        return [*self.available, *self.outdated]

    def resize(self, target: int) -> list[ReadyEnv]:
        """Change the target; returns the available envs now surplus (caller deletes them)."""
        if not 0 <= target <= MAX_POOL_SIZE:
            raise ValueError(f"pool size must be between 0 and {MAX_POOL_SIZE}, got {target}")
        self.target = target
        surplus, self.available = self.available[target:], self.available[:target]
        if target == 0:  # disabled: no fallbacks either
            surplus, self.outdated = surplus + self.outdated, []
        return surplus

    def reset_backoff(self) -> None:
        """Forget failures (config changed, or the user asked for a rebuild)."""
        self.failures = 0
        self.last_error = None
        self.retry_at = None
