"""The supervisor's usage hooks and build phases, in-process with fake workers
(the harness of test_supervisor_unit.py: no subprocess)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from runtimed.core.failure import BackendError, ErrorKind
from runtimed.protocol.messages import Empty, EnvReply, Take
from tests.daemon.test_supervisor_unit import Harness, _no_subprocess, config, run, until  # noqa: F401


def test_takes_empty_replies_and_waits_are_counted(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await until(lambda: len(h.pool.available) == 1, "a full pool")
        assert isinstance(await h.take(), EnvReply)  # served at once
        h.worker.hold = True
        await until(lambda: h.worker.held, "the replacement build")
        assert isinstance(await h.take(wait_s=0), Empty)  # nothing ready, no wait
        assert isinstance(await h.take(wait_s=0.05), Empty)  # waited, then empty
        asyncio.get_running_loop().call_later(0.1, h.worker.release_held)
        assert isinstance(await h.take(wait_s=10), EnvReply)  # waited, then served
        takes = h.sup.usage.usage.backends["toy"].takes
        assert (takes.served, takes.empty, takes.waited) == (2, 2, 2)
        assert takes.wait_s.min_s is not None and takes.wait_s.min_s >= 0.05
        stats = (await h.sup.stats()).backends["toy"]
        assert stats.takes.wait_s.count == 2 and stats.takes.wait_s.p99 is not None
        assert stats.disk_bytes is not None

    run(test, tmp_path, config(size=1))


def test_build_phases_in_status_and_build_durations_counted(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.worker.hold = True
        await until(lambda: h.worker.held, "a build in flight")
        (build,) = h.sup.status().pools["toy"].builds
        assert build.phase == "installing" and build.message == "fake install"
        assert build.elapsed_s >= 0 and build.phase_elapsed_s is not None
        await asyncio.sleep(0.15)
        later = h.sup.status().pools["toy"].builds[0]
        assert later.elapsed_s >= 0.1 and later.env_id == build.env_id
        h.worker.hold = False
        h.worker.release_held()
        await until(lambda: len(h.pool.available) == 1, "the build done")
        assert h.sup.status().pools["toy"].builds == []
        builds = h.sup.usage.usage.backends["toy"].builds
        assert builds.succeeded == 1 and set(builds.phase_s) == {"creating", "installing"}
        assert builds.phase_s["installing"].max_s is not None and builds.phase_s["installing"].max_s >= 0.1

    run(test, tmp_path, config(size=1))


def test_failed_builds_counted_by_kind(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.worker.hold = True
        await until(lambda: h.worker.held, "a build")
        h.worker.fail_next = [BackendError(ErrorKind.NETWORK, "offline")]
        h.worker.release_held()
        await until(lambda: h.pool.failures == 1, "the failure recorded")
        usage = h.sup.usage.usage.backends["toy"]
        assert usage.failures == {"network": 1} and (usage.builds.failed, usage.builds.succeeded) == (1, 0)
        assert (await h.sup.stats()).backends["toy"].failures == {"network": 1}

    run(test, tmp_path, config(size=1))


def test_envs_taken_for_kernels_are_not_counted_as_takes(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await until(lambda: len(h.pool.available) == 1, "a full pool")
        reply = await h.sup.parts.taker.take_uncounted(Take(env_type="toy"), None)  # as KernelEnvs takes
        assert isinstance(reply, EnvReply)
        backend = h.sup.usage.usage.backends.get("toy")
        assert backend is None or (backend.takes.served, backend.takes.empty) == (0, 0)
        await h.take()
        takes = h.sup.usage.usage.backends["toy"].takes
        assert takes.served + takes.empty == 1

    run(test, tmp_path, config(size=1))
