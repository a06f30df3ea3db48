"""The phases of an env build, and the supervisor's record of one build in flight.

The worker reports a phase change through a ``progress`` message carrying a
:class:`BuildPhase` (see ``runtimed.protocol.jobs.Progress``); the supervisor keeps a
:class:`BuildTrack` per build: the phase it is in, since when, its last progress
message, and the time spent in each phase so far (for ``status`` and the usage stats).
"""

from __future__ import annotations

from attrs import define, field

from runtimed.core.convert import StrEnum

__all__ = ["BuildPhase", "BuildTrack"]


class BuildPhase(StrEnum):
    """Where a build is; the values are the strings shown in ``status``."""

    CREATING = "creating"  # the env's skeleton (``uv venv``, directories)
    INSTALLING = "installing"  # solving and installing packages
    COMPILING = "compiling"  # bytecode: linked from the store, the rest compiled
    WARMING_UP = "warming_up"  # the warm-up import that proves the env works


@define
class BuildTrack:
    """One build in flight, as the supervisor sees it (all times are ``time.monotonic()``)."""

    started: float
    phase: BuildPhase | None = None  # None until the worker reports the first phase
    phase_started: float | None = None
    message: str = ""
    durations: dict[BuildPhase, float] = field(factory=dict)

    def advance(self, phase: BuildPhase | None, message: str, now: float) -> None:
        """A progress report: enter ``phase`` (if given and new), remember ``message``."""
        if phase is not None and phase != self.phase:
            self._close(now)
            self.phase = phase
            self.phase_started = now
        if message:
            self.message = message

    def finish(self, now: float) -> dict[BuildPhase, float]:
        """The time spent in each phase, the current one closed at ``now``."""
        self._close(now)
        self.phase_started = now
        return dict(self.durations)

    def _close(self, now: float) -> None:
        if self.phase is not None and self.phase_started is not None:
            spent = max(0.0, now - self.phase_started)
            self.durations[self.phase] = self.durations.get(self.phase, 0.0) + spent
