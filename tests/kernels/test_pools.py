"""Kernel pools of package sets (pure): one pool per recently used set, the least
recently used beyond the bound dropped with its idle kernels, none when disabled."""

from __future__ import annotations

from runtimed.kernels.pools import PackageSet, PoolSet
from runtimed.kernels.table import ProjectFound
from runtimed.kernels.variants import Variants, variant_of

DAEMON = variant_of({"PATH": "/usr/bin"})
SIX = PackageSet("uv", ("six",))
IDNA = PackageSet("uv", ("idna",))
ATTRS = PackageSet("uv", ("attrs",))
CONDA_SIX = PackageSet("conda", ("six",))
FILE = "/p/pyproject.toml"


def new_pools() -> PoolSet:
    pools = PoolSet(Variants(keep=1, recent=[DAEMON]))
    pools.configure({"uv": 1, "conda": 1}, {}, None)
    return pools


def ready_kernel(pools: PoolSet, wanted: PackageSet, kernel_id: str, keep: int = 2) -> None:
    pool, _ = pools.package_pool(wanted, keep)
    assert pool is not None
    assert pools.start(pool, kernel_id) == DAEMON
    assert pools.ready(pool, kernel_id)


def test_each_set_gets_one_kernel_and_the_same_set_spelt_otherwise_shares_it() -> None:
    pools = new_pools()
    ready_kernel(pools, SIX, "k1")
    pool, stop = pools.package_pool(PackageSet("uv", ("SIX",)), keep=2)
    assert stop == [] and pool is not None and list(pool.idle) == ["k1"]
    assert pool.deficit(0.0) == 0 and pools.package_set(pool) == SIX
    assert pools.take(pool, DAEMON, 0.0) == "k1"
    assert pools.status("uv", 0).package_sets == 0


def test_the_least_recently_used_set_beyond_the_bound_stops_its_kernels() -> None:
    pools = new_pools()
    ready_kernel(pools, SIX, "k1")
    ready_kernel(pools, IDNA, "k2")
    ready_kernel(pools, CONDA_SIX, "k3")  # another backend's sets are bounded apart
    assert pools.status("uv", 0).package_sets == 2
    pools.package_pool(SIX, keep=2)  # used again: IDNA is now the oldest
    pool, stop = pools.package_pool(ATTRS, keep=2)
    assert stop == ["k2"] and pool is not None
    assert [pools.package_set(p) for p in pools.sets.values()] == [CONDA_SIX, SIX, ATTRS]


def test_a_kernel_still_starting_for_a_dropped_set_is_not_kept() -> None:
    pools = new_pools()
    pool, _ = pools.package_pool(SIX, keep=1)
    assert pool is not None
    pools.start(pool, "k1")
    pools.package_pool(IDNA, keep=1)
    assert pools.package_set(pool) is None
    assert not pools.ready(pool, "k1")


def test_no_set_keeps_a_kernel_when_disabled() -> None:
    pools = new_pools()
    ready_kernel(pools, SIX, "k1")
    pool, stop = pools.package_pool(IDNA, keep=0)
    assert pool is None and stop == ["k1"] and not pools.sets


def test_a_set_gets_a_pool_only_when_asked_to_create_one() -> None:
    pools = new_pools()
    pool, stop = pools.package_pool(SIX, keep=2, create=False)
    assert pool is None and stop == [] and not pools.sets
    ready_kernel(pools, SIX, "k1")
    pool, _ = pools.package_pool(SIX, keep=2, create=False)
    assert pool is not None and list(pool.idle) == ["k1"]


def test_a_projects_new_set_replaces_the_sets_of_its_older_contents() -> None:
    pools = new_pools()
    old = PackageSet("uv", ("six",), project_dir="/p/nb", project=ProjectFound(FILE, "uv", key="k-old"))
    ready_kernel(pools, old, "k1")
    ready_kernel(pools, SIX, "k2")
    new = PackageSet("uv", ("six==1.15.0",), project_dir="/p", project=ProjectFound(FILE, "uv", key="k-new"))
    pool, stop = pools.package_pool(new, keep=4)
    assert stop == ["k1"] and pool is not None and new.key == "k-new"
    assert [pools.package_set(p) for p in pools.sets.values()] == [SIX, new]
