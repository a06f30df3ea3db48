"""Bookkeeping of one backend's pre-started kernels: a pure state machine, no I/O.

A kernel is *starting* from the moment an env was taken for it until it answered
``kernel_info`` (then *idle*) or failed. ``take`` hands an idle kernel out exactly
once. Failures back off exponentially so a broken env cannot make the daemon spin.

The refill after a hand-out waits :data:`REFILL_DELAY_S`: starting a kernel (and
the env build it sets off) takes a core for most of a second, and on a small
machine that stole it from the kernel just handed out, in the very milliseconds
its client connects (measured on 2 cores: a hand-out took 10-100 ms with the
refill at once, 3 ms with it delayed; ``bench/kernel_start.py``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from attrs import define, field

__all__ = ["KernelPool"]

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 60.0
REFILL_DELAY_S = 1.0


@define
class KernelPool:
    """Kernel ids of one backend by state; the caller maps ids to processes."""

    target: int
    idle: deque[str] = field(factory=deque)
    starting: set[str] = field(factory=set)
    failures: int = 0
    retry_at: float = 0.0  # backing off after a failure until then
    refill_at: float = 0.0  # a kernel was just handed out: leave it the cores until then
    last_error: str | None = None

    def deficit(self, now: float) -> int:
        """How many kernels to start now (0 while backing off after a failure, or
        just after a hand-out)."""
        if now < self.next_start_at:
            return 0
        return max(0, self.target - len(self.idle) - len(self.starting))

    @property
    def next_start_at(self) -> float:
        """No kernel is started before this (monotonic) time."""
        return max(self.retry_at, self.refill_at)

    def start(self, kernel_id: str) -> None:
        """An env was taken for ``kernel_id``: it counts as starting at once."""
        self.starting.add(kernel_id)

    def ready(self, kernel_id: str) -> bool:
        """The kernel answered kernel_info. False if it is no longer wanted (surplus)."""
        self.starting.discard(kernel_id)
        self.failures = 0
        self.last_error = None
        if len(self.idle) >= self.target:
            return False
        self.idle.append(kernel_id)
        return True

    def failed(self, kernel_id: str, error: str, now: float) -> None:
        """The kernel did not start; back off before the next attempt."""
        self.starting.discard(kernel_id)
        self.failures += 1
        self.last_error = error
        self.retry_at = now + min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (self.failures - 1))

    def abandoned(self, kernel_id: str) -> None:
        """A start given up without blame (daemon stopping, no env)."""
        self.starting.discard(kernel_id)

    def take(self, now: float, accept: Callable[[str], bool] | None = None) -> str | None:
        """The oldest idle kernel (that ``accept`` accepts), removed from the pool;
        None if there is none. Its replacement starts :data:`REFILL_DELAY_S` later."""
        kernel_id = next((k for k in self.idle if accept is None or accept(k)), None)
        if kernel_id is None:
            return None
        self.refill_at = now + REFILL_DELAY_S
        self.idle.remove(kernel_id)
        return kernel_id

    def lost(self, kernel_id: str) -> None:
        """An idle kernel died on its own."""
        if kernel_id in self.idle:
            self.idle.remove(kernel_id)

    def resize(self, target: int) -> list[str]:
        """Set the target; returns the idle kernels now surplus (to stop)."""
        self.target = target
        surplus = []
        while len(self.idle) > target:
            surplus.append(self.idle.pop())
        self.retry_at = 0.0
        return surplus

    def drain(self) -> list[str]:
        """Every idle kernel (to stop), leaving the pool empty."""
        ids = list(self.idle)
        self.idle.clear()
        return ids
