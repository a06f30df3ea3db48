"""The pure decision to end a handed-out kernel whose owner died."""

from __future__ import annotations

import signal

from runtimed.kernels.owners import TERM_GRACE_S, OwnerWatch


def test_term_after_the_grace_then_kill() -> None:
    watch = OwnerWatch()
    assert watch.step(True, 0.0, 10.0) is None
    assert watch.step(False, 1.0, 10.0) is None  # owner gone: the grace starts now
    assert watch.step(False, 10.9, 10.0) is None
    assert watch.step(False, 11.0, 10.0) is signal.SIGTERM
    assert watch.step(False, 11.5, 10.0) is None  # SIGTERM once
    assert watch.step(False, 11.0 + TERM_GRACE_S, 10.0) is signal.SIGKILL


def test_owner_seen_again_restarts_the_grace() -> None:
    watch = OwnerWatch()
    assert watch.step(False, 0.0, 10.0) is None
    assert watch.step(True, 5.0, 10.0) is None
    assert watch.step(False, 9.0, 10.0) is None
    assert watch.step(False, 18.9, 10.0) is None
    assert watch.step(False, 19.0, 10.0) is signal.SIGTERM


def test_zero_grace_terms_at_once() -> None:
    assert OwnerWatch().step(False, 3.0, 0.0) is signal.SIGTERM
