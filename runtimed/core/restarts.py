"""When to restart a backend's worker after it dies: a pure policy, no clock, no I/O.

:class:`RestartPolicy` is told each death (:meth:`~RestartPolicy.died`, with when the
worker was started and when it died) and answers with a :class:`Restart`: restart
after an exponential backoff that grows with consecutive *quick* deaths (a worker
that lived less than ``start_grace_s``), or, once more than ``max_restarts`` deaths
fall within ``restart_window_s``, mark the worker failed and try again after
``failed_cooldown_s`` (which starts the count afresh). The worker's handle
(:class:`runtimed.workers.handle.WorkerHandle`) carries the decisions out.
"""

from __future__ import annotations

import collections
import enum

from attrs import define, field

from runtimed.core.backoff import Backoff

__all__ = ["Restart", "RestartKind", "RestartLimits", "RestartPolicy"]


class RestartKind(str, enum.Enum):
    BACKOFF = "backoff"  # restart after the backoff delay
    COOLDOWN = "cooldown"  # too many deaths in the window: failed until the cool-down ends


@define(frozen=True)
class RestartLimits:
    """The ``[supervision]`` keys the policy reads (seconds, and a count)."""

    start_grace_s: float  # a worker that dies sooner died "quickly"
    restart_base_s: float  # the backoff after the first quick death ...
    restart_cap_s: float  # ... doubling with each, up to this
    max_restarts: int  # more deaths than this within restart_window_s: failed
    restart_window_s: float
    failed_cooldown_s: float  # failed for this long, then started again


@define(frozen=True)
class Restart:
    """A decision: restart at ``at`` (``delay_s`` after the death)."""

    kind: RestartKind
    delay_s: float
    at: float
    deaths_in_window: int  # counting this one

    @property
    def failed(self) -> bool:
        return self.kind is RestartKind.COOLDOWN


@define
class RestartPolicy:
    """One worker's restart decisions; ``limits`` may be replaced at any time (config reload)."""

    limits: RestartLimits
    restarts: int = 0  # every restart decided, for status
    quick_deaths: int = 0  # consecutive deaths within start_grace_s of starting
    _deaths: collections.deque[float] = field(factory=collections.deque)  # times, within the window

    def died(self, started: float, now: float) -> Restart:
        """The worker started at ``started`` died at ``now``: when to restart it."""
        limits = self.limits
        self.quick_deaths = self.quick_deaths + 1 if now - started < limits.start_grace_s else 0
        self._deaths.append(now)
        while self._deaths and now - self._deaths[0] > limits.restart_window_s:
            self._deaths.popleft()
        deaths = len(self._deaths)
        self.restarts += 1
        if deaths > limits.max_restarts:
            self._deaths.clear()
            self.quick_deaths = 0
            return Restart(RestartKind.COOLDOWN, limits.failed_cooldown_s, now + limits.failed_cooldown_s, deaths)
        backoff = Backoff(base=limits.restart_base_s, cap=limits.restart_cap_s)
        delay = backoff.delay(max(1, self.quick_deaths))
        return Restart(RestartKind.BACKOFF, delay, now + delay, deaths)
