"""Start-up variants: the values of :data:`~runtimed.kernels.environ.STARTUP_VARS`
pre-started kernels are started with. Pure, no I/O.

A request whose start-up variables differ from every kept variant is refused (a
pre-started kernel cannot change them) and its values become the most recent
variant: the kernels started next use them, so the next kernel for the same front
end (a Jupyter server with its own ``JUPYTER_CONFIG_DIR``, a shell's ``PYTHONPATH``)
is served at once. At most ``keep`` variants are kept warm, most recent first; each
gets the backend's number of pre-started kernels.
"""

from __future__ import annotations

from collections.abc import Mapping

from attrs import define, field

from runtimed.kernels.environ import STARTUP_VARS

__all__ = ["Variant", "Variants", "apply_variant", "variant_of"]

#: The start-up variables' values (None: unset), in :data:`STARTUP_VARS` order.
Variant = tuple[str | None, ...]


def variant_of(env: Mapping[str, str]) -> Variant:
    """The start-up variant of an environment."""
    return tuple(env.get(name) for name in STARTUP_VARS)


def apply_variant(base: Mapping[str, str], variant: Variant) -> dict[str, str]:
    """``base`` with its start-up variables set (or removed) as ``variant`` has them."""
    env = dict(base)
    for name, value in zip(STARTUP_VARS, variant, strict=True):
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@define
class Variants:
    """The start-up variants kept warm, most recently asked first."""

    keep: int
    recent: list[Variant] = field(factory=list)

    def note(self, variant: Variant) -> list[Variant]:
        """``variant`` was asked for: it becomes the most recent. Returns the
        variants no longer kept (their idle kernels are to be stopped)."""
        if variant in self.recent:
            self.recent.remove(variant)
        self.recent.insert(0, variant)
        dropped, self.recent = self.recent[self.keep :], self.recent[: self.keep]
        return dropped

    def resize(self, keep: int) -> list[Variant]:
        """Keep ``keep`` variants from now on; returns those dropped."""
        self.keep = keep
        dropped, self.recent = self.recent[keep:], self.recent[:keep]
        return dropped

    def to_start(self, counts: Mapping[Variant, int], per_variant: int) -> Variant | None:
        """The variant the next kernel is started with: the most recent one with
        fewer than ``per_variant`` kernels (idle or starting); None if all have enough."""
        for variant in self.recent:
            if counts.get(variant, 0) < per_variant:
                return variant
        return None
