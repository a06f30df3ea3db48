"""Every backend's kernel pools and the start-up variant of each pooled kernel: pure
bookkeeping, no I/O. It returns the ids of kernels to stop; the keeper stops them.

A backend has two pools (:class:`~runtimed.kernels.pool.KernelPool`): pre-started
kernels and pre-imported interpreters. Each kept start-up variant
(:class:`~runtimed.kernels.variants.Variants`) gets the configured number of each,
so a pool's target is that number times the variants kept.

Each recently used set of extra packages (:class:`PackageSet`, a notebook's or a
project's dependencies) gets a pool of its own with one kernel per kept variant, in
an env of that set, so that opening the notebook again is as fast as a kernel
without packages. Only the ``keep`` most recently used sets of a backend keep theirs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import attrs
from attrs import define, field, frozen

from runtimed.core.extras import extras_key
from runtimed.kernels.environ import Refusal, RefusalKind
from runtimed.kernels.outcomes import Outcomes
from runtimed.kernels.pool import KernelPool
from runtimed.kernels.process import KernelRecord
from runtimed.kernels.table import ProjectFound
from runtimed.kernels.variants import Variant, Variants
from runtimed.protocol.messages import KernelPoolStatus, PackageOptions

__all__ = ["PackageSet", "PoolSet"]


@frozen
class PackageSet:
    """A set of extra packages of one backend, as kernel requests name it."""

    backend: str
    packages: tuple[str, ...]
    channels: tuple[str, ...] = ()
    options: PackageOptions = field(factory=PackageOptions)
    # A project's set: the directory its kernels ask from, and the project found there.
    project_dir: str | None = None
    project: ProjectFound | None = None

    @property
    def key(self) -> str:
        """The same key the daemon's warm sets use: one name per set."""
        if self.project is not None:
            return self.project.key
        return extras_key(self.backend, self.packages, self.channels, attrs.asdict(self.options))


@define
class PoolSet:
    """The kernel pools of every backend and the variant each pooled kernel started with."""

    variants: Variants
    prestarted: dict[str, KernelPool] = field(factory=dict)
    preimported: dict[str, KernelPool] = field(factory=dict)
    variant: dict[str, Variant] = field(factory=dict)  # kernel id -> its variant (while pooled)
    per_variant: dict[int, int] = field(factory=dict)  # id(pool) -> kernels wanted of each variant
    outcomes: dict[str, Outcomes] = field(factory=dict)  # how each backend's requests were served
    # Pre-started kernels of package sets, by (backend, key), least recently used first.
    sets: OrderedDict[tuple[str, str], KernelPool] = field(factory=OrderedDict)
    set_of: dict[int, PackageSet] = field(factory=dict)  # id(pool) -> its package set

    def outcome(self, backend: str) -> Outcomes:
        return self.outcomes.setdefault(backend, Outcomes())

    def all(self) -> list[KernelPool]:
        return [*self.prestarted.values(), *self.preimported.values(), *self.sets.values()]

    def package_pool(
        self, wanted: PackageSet, keep: int, *, create: bool = True
    ) -> tuple[KernelPool | None, list[str]]:
        """The kernel pool of ``wanted``, now its backend's most recently used set
        (None when ``keep`` is 0, or it has none and not ``create``), and the idle
        kernels of the sets beyond ``keep`` (to stop)."""
        slot = (wanted.backend, wanted.key)
        pool = self.sets.get(slot)
        stop: list[str] = []
        if pool is None and keep > 0 and create:
            stop += self._drop_superseded(wanted)
            pool = self.sets[slot] = KernelPool(target=len(self.variants.recent))
            self.set_of[id(pool)] = wanted
            self.per_variant[id(pool)] = 1
        if pool is not None:
            self.sets.move_to_end(slot)
        same_backend = [s for s in self.sets if s[0] == wanted.backend]
        for old in same_backend[: max(0, len(same_backend) - keep)]:
            stop += self._drop_set(old)
        return (pool if keep > 0 and slot in self.sets else None), stop

    def package_set(self, pool: KernelPool) -> PackageSet | None:
        """The set whose kernels ``pool`` keeps; None for a base pool or a dropped set."""
        return self.set_of.get(id(pool))

    def _drop_superseded(self, wanted: PackageSet) -> list[str]:
        """A project's new set replaces the sets of its older contents."""
        if wanted.project is None:
            return []
        file = wanted.project.file
        older = [s for s, p in self.sets.items() if (o := self.set_of[id(p)].project) is not None and o.file == file]
        return [kernel_id for slot in older for kernel_id in self._drop_set(slot)]

    def _drop_set(self, slot: tuple[str, str]) -> list[str]:
        pool = self.sets.pop(slot)
        self.set_of.pop(id(pool), None)
        self.per_variant.pop(id(pool), None)
        stop = pool.resize(0)  # a kernel still starting for it is not kept either
        for kernel_id in stop:
            self.variant.pop(kernel_id, None)
        return stop

    def of(self, backend: str) -> list[KernelPool]:
        """The backend's pools, pre-started kernels first."""
        return [p for p in (self.prestarted.get(backend), self.preimported.get(backend)) if p is not None]

    def configure(
        self, targets: Mapping[str, int], preimported: Mapping[str, int], keep_variants: int | None
    ) -> list[str]:
        """Set the kernels wanted of each variant per backend, and the variants kept;
        returns the idle kernels now surplus."""
        surplus = self._drop(self.variants.resize(keep_variants)) if keep_variants is not None else []
        for backend in {*targets, *preimported}:
            for pools, wanted in ((self.prestarted, targets), (self.preimported, preimported)):
                target = wanted.get(backend, 0)
                pool = pools.setdefault(backend, KernelPool(target=target))
                self.per_variant[id(pool)] = target
                surplus += self._resize(pool)
        return surplus

    def note(self, variant: Variant) -> list[str]:
        """A request asked for ``variant`` (now the most recent); returns the idle
        kernels of the variants it pushed out."""
        return self._drop(self.variants.note(variant))

    def start(self, pool: KernelPool, kernel_id: str) -> Variant:
        """``kernel_id`` starts in ``pool``: with the most recent variant lacking kernels."""
        counts: dict[Variant, int] = {}
        for known in (*pool.idle, *pool.starting):
            if (v := self.variant.get(known)) is not None:
                counts[v] = counts.get(v, 0) + 1
        wanted = self.variants.to_start(counts, self.per_variant.get(id(pool), pool.target))
        chosen = self.variant[kernel_id] = wanted if wanted is not None else self.variants.recent[0]
        pool.start(kernel_id)
        return chosen

    def ready(self, pool: KernelPool, kernel_id: str) -> bool:
        """The kernel is ready: False if it is no longer wanted (surplus, or of a dropped variant)."""
        if self.variant.get(kernel_id) not in self.variants.recent:
            pool.abandoned(kernel_id)
            return False
        return pool.ready(kernel_id)

    def take(self, pool: KernelPool, variant: Variant, now: float) -> str | None:
        """An idle kernel of ``pool`` started with ``variant``, removed from the pool."""
        kernel_id = pool.take(now, lambda k: self.variant.get(k) == variant)
        if kernel_id is not None:
            self.variant.pop(kernel_id, None)
        return kernel_id

    def take_any(self, pool: KernelPool, now: float) -> str | None:
        """Any idle kernel of ``pool`` (its env is wanted, not its variant)."""
        kernel_id = pool.take(now)
        if kernel_id is not None:
            self.variant.pop(kernel_id, None)
        return kernel_id

    def forget(self, kernel_id: str) -> None:
        self.variant.pop(kernel_id, None)

    def holding(self, record: KernelRecord) -> KernelPool | None:
        """The pool in which an idle (or starting) kernel is counted, if any."""
        for pool in (self.prestarted.get(record.backend), self.preimported.get(record.backend), *self.sets.values()):
            if pool is not None and (record.id in pool.idle or record.id in pool.starting):
                return pool
        return None

    def none_ready(self, backend: str) -> Refusal:
        """Why no pre-started kernel of ``backend`` served a request it could have."""
        pool = self.prestarted.get(backend)
        if pool is None:
            return Refusal(RefusalKind.DISABLED, f"no kernels configured for {backend}")
        if not pool.target:
            return Refusal(RefusalKind.DISABLED, "pre-started kernels are disabled")
        return Refusal(RefusalKind.NONE_READY, "no pre-started kernel ready")

    def status(self, backend: str, handed_out: int) -> KernelPoolStatus:
        outcomes = self.outcome(backend)
        pool = self.prestarted.get(backend)
        if pool is None:
            return KernelPoolStatus(handed_out=handed_out)
        preimported = self.preimported.get(backend) or KernelPool(target=0)
        return KernelPoolStatus(
            available=len(pool.idle),
            starting=len(pool.starting),
            target=pool.target,
            handed_out=handed_out,
            error=pool.last_error or preimported.last_error,
            preimported=len(preimported.idle),
            preimported_target=preimported.target,
            refused=dict(outcomes.refused),
            recent=list(outcomes.recent),
            package_sets=sum(len(p.idle) for (b, _k), p in self.sets.items() if b == backend),
        )

    def _target(self, pool: KernelPool) -> int:
        """The kernels wanted of each variant, times the variants kept."""
        return self.per_variant.get(id(pool), pool.target) * len(self.variants.recent)

    def _resize(self, pool: KernelPool) -> list[str]:
        return pool.resize(self._target(pool))

    def _drop(self, dropped: list[Variant]) -> list[str]:
        stop: list[str] = []
        for pool in self.all():
            for kernel_id in [k for k in pool.idle if self.variant.get(k) in dropped]:
                pool.lost(kernel_id)
                stop.append(kernel_id)
            if pool.target != self._target(pool):
                stop += self._resize(pool)  # only a changed target: a resize also ends a failure's backoff
        return stop
