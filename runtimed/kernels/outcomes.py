"""How kernel requests were served, per backend: a pure tally for ``status`` and ``doctor``."""

from __future__ import annotations

from collections import Counter, deque

from attrs import define, field

__all__ = ["RECENT", "SERVED", "Outcomes"]

RECENT = 20  # how many of the latest requests are remembered in order
SERVED = ""  # the label of a request a pre-started kernel served


@define
class Outcomes:
    """Refusal labels (:attr:`~runtimed.kernels.environ.Refusal.label`) counted since
    the daemon started, and the latest requests' labels in order (:data:`SERVED`
    for one a pre-started kernel served)."""

    refused: Counter[str] = field(factory=Counter)
    recent: deque[str] = field(factory=lambda: deque(maxlen=RECENT))

    def served(self) -> None:
        self.recent.append(SERVED)

    def refusal(self, label: str) -> None:
        self.refused[label] += 1
        self.recent.append(label)
