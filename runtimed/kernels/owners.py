"""When to shut down a handed-out kernel whose owner died: a pure decision, no I/O.

The owner is the process that took the kernel (a KernelManager's process). Like
ipykernel's parent poller, the daemon ends the kernel once its owner has been gone
for a grace period: SIGTERM first, then SIGKILL if the kernel ignores it.
"""

from __future__ import annotations

import signal

from attrs import define

__all__ = ["TERM_GRACE_S", "OwnerWatch"]

TERM_GRACE_S = 5.0  # SIGTERM, then SIGKILL after this


@define
class OwnerWatch:
    """What the keeper remembers about one handed-out kernel's owner."""

    dead_since: float | None = None
    term_sent_at: float | None = None

    def step(self, owner_alive: bool, now: float, grace_s: float) -> signal.Signals | None:
        """The signal to send the kernel now, if any (called periodically)."""
        if owner_alive:
            self.dead_since = None
            return None
        if self.dead_since is None:
            self.dead_since = now
        if self.term_sent_at is None:
            if now - self.dead_since >= grace_s:
                self.term_sent_at = now
                return signal.SIGTERM
            return None
        if now - self.term_sent_at >= TERM_GRACE_S:
            return signal.SIGKILL
        return None
