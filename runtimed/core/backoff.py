"""Exponential backoff, shared by the pool (failed builds) and worker supervision (restarts)."""

from __future__ import annotations

from attrs import define

__all__ = ["Backoff"]


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
