"""The supervisor's record of a build in flight: its phase and the time spent in each."""

from __future__ import annotations

from runtimed.core.phases import BuildPhase, BuildTrack


def test_build_track_times_each_phase() -> None:
    track = BuildTrack(started=10.0)
    track.advance(None, "queued", 10.5)
    assert track.phase is None and track.message == "queued"
    track.advance(BuildPhase.CREATING, "creating", 11.0)
    track.advance(BuildPhase.INSTALLING, "uv pip install", 12.0)
    track.advance(None, "uv pip install (online)", 13.0)  # a message within the phase
    assert track.phase is BuildPhase.INSTALLING and track.phase_started == 12.0
    track.advance(BuildPhase.COMPILING, "bytecode", 15.0)
    track.advance(BuildPhase.INSTALLING, "again", 16.0)  # a phase entered twice adds up
    durations = track.finish(16.5)
    assert durations == {
        BuildPhase.CREATING: 1.0,
        BuildPhase.INSTALLING: 3.5,
        BuildPhase.COMPILING: 1.0,
    }
