"""Start-up variants and the pools that keep kernels of each (pure)."""

from __future__ import annotations

from runtimed.kernels.environ import STARTUP_VARS
from runtimed.kernels.pools import PoolSet
from runtimed.kernels.variants import Variants, apply_variant, variant_of

DAEMON = variant_of({"PATH": "/usr/bin"})
SHELL = variant_of({"PYTHONPATH": "/src"})
SERVER = variant_of({"JUPYTER_CONFIG_DIR": "/etc/jupyter-alt"})


def test_a_variant_is_the_start_up_variables_and_applies_to_an_environment() -> None:
    assert variant_of({"PYTHONPATH": "/src", "HOME": "/h"}) == variant_of({"PYTHONPATH": "/src"})
    assert len(SHELL) == len(STARTUP_VARS)
    env = apply_variant({"PYTHONPATH": "/old", "IPYTHONDIR": "/ip", "HOME": "/h"}, SHELL)
    assert env == {"PYTHONPATH": "/src", "HOME": "/h"}  # set as the variant has it, the rest removed


def test_the_most_recent_variants_are_kept_and_the_oldest_dropped() -> None:
    variants = Variants(keep=2, recent=[DAEMON])
    assert variants.note(SHELL) == [] and variants.recent == [SHELL, DAEMON]
    assert variants.note(DAEMON) == [] and variants.recent == [DAEMON, SHELL]  # asked again: most recent
    assert variants.note(SERVER) == [SHELL] and variants.recent == [SERVER, DAEMON]
    assert variants.resize(1) == [DAEMON] and variants.recent == [SERVER]
    assert variants.to_start({SERVER: 1}, per_variant=1) is None
    assert variants.to_start({}, per_variant=1) == SERVER


def pools_of(keep: int, kernels: int = 1) -> PoolSet:
    pools = PoolSet(Variants(keep=keep, recent=[DAEMON]))
    assert pools.configure({"uv": kernels}, {"uv": 0}, keep) == []
    return pools


def fill(pools: PoolSet, ids: list[str]) -> None:
    pool = pools.prestarted["uv"]
    for kernel_id in ids:
        pools.start(pool, kernel_id)
        assert pools.ready(pool, kernel_id)


def test_with_one_variant_kept_a_new_one_replaces_the_idle_kernels() -> None:
    pools = pools_of(keep=1)
    fill(pools, ["a"])
    pool = pools.prestarted["uv"]
    assert pools.take(pool, SHELL, 0.0) is None  # a kernel of another variant never serves it
    assert pools.note(SHELL) == ["a"]  # stopped: the next kernel starts with the shell's values
    assert pool.target == 1 and pool.deficit(10.0) == 1
    assert pools.start(pool, "b") == SHELL


def test_each_kept_variant_gets_the_configured_kernels() -> None:
    pools = pools_of(keep=2)
    pool = pools.prestarted["uv"]
    assert pool.target == 1  # one variant known so far
    assert pools.note(SHELL) == []
    assert pool.target == 2
    assert pools.start(pool, "s") == SHELL  # the most recent variant first
    assert pools.start(pool, "d") == DAEMON
    assert pools.ready(pool, "s") and pools.ready(pool, "d")
    assert pools.take(pool, DAEMON, 0.0) == "d"
    assert pools.take(pool, DAEMON, 0.0) is None and pools.take(pool, SHELL, 0.0) == "s"


def test_a_kernel_still_starting_for_a_dropped_variant_is_not_pooled() -> None:
    pools = pools_of(keep=1)
    pool = pools.prestarted["uv"]
    pools.start(pool, "old")
    pools.note(SHELL)
    assert not pools.ready(pool, "old") and not pool.starting and not pool.idle


def test_status_tells_what_was_refused_and_the_latest_outcomes() -> None:
    pools = pools_of(keep=1)
    pools.outcome("uv").refusal("startup_variable:JUPYTER_CONFIG_DIR")
    pools.outcome("uv").served()
    status = pools.status("uv", 0)
    assert status.refused == {"startup_variable:JUPYTER_CONFIG_DIR": 1}
    assert status.recent == ["startup_variable:JUPYTER_CONFIG_DIR", ""]
    assert pools.none_ready("conda").label == "disabled"


def test_a_new_variant_does_not_end_a_failures_backoff() -> None:
    pools = pools_of(keep=1)
    pool = pools.prestarted["uv"]
    pools.start(pool, "a")
    pool.failed("a", "ipykernel is broken", now=0.0)
    assert pool.deficit(0.5) == 0  # backing off
    pools.note(SHELL)  # same target (one variant kept): nothing to resize
    assert pool.deficit(0.5) == 0
