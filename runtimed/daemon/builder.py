"""Carrying out the pool's decisions: deleting envs, starting builds, waking after a backoff.

This is the one place where what :class:`~runtimed.core.pool.Pool` decides happens. A
build runs as a job on the backend's worker; whatever way it ends (success,
classified failure, worker crash, or an unforeseen exception) is reported back to
the pool, so no env id stays ``warming`` for good. The worker's progress reports
move the build's :class:`~runtimed.core.phases.BuildTrack` (shown in ``status``); how a
build ended goes to the usage recorder.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from runtimed.core.failure import BackendError, ErrorKind, Failure
from runtimed.core.phases import BuildTrack
from runtimed.core.records import ReadyEnv
from runtimed.core.usage import UsageRecorder
from runtimed.daemon.runtime import BackendRuntime
from runtimed.protocol.jobs import CreateEnv, Progress
from runtimed.util.files import new_env_id

__all__ = ["Builder"]

log = logging.getLogger("runtimed.daemon.supervisor")


class Builder:
    """Executes pool decisions for every backend, with narrow collaborators."""

    def __init__(
        self,
        *,
        runtimes: Mapping[str, BackendRuntime],
        env_path: Callable[[str, str], Path],
        spawn: Callable[..., asyncio.Task[Any]],
        discard: Callable[[Path], None],
        measure: Callable[[Path], None],
        stopping: Callable[[], bool],
        usage: UsageRecorder,
        record_pooled: Callable[[Path], None],
    ) -> None:
        self.runtimes = runtimes
        self.env_path = env_path
        self.usage = usage
        self.spawn = spawn
        self.discard = discard
        self.measure = measure
        self.stopping = stopping
        self.record_pooled = record_pooled  # durably (so run in a thread), before the env can be handed out

    def carry_out_all(self) -> None:
        """:meth:`carry_out` for every backend."""
        for runtime in self.runtimes.values():
            self.carry_out(runtime)

    async def settle(self, runtime: BackendRuntime) -> None:
        """:meth:`carry_out`, then wake the takes waiting on ``runtime``."""
        self.carry_out(runtime)
        await runtime.notify()

    def carry_out(
        self, runtime: BackendRuntime, delete: Iterable[tuple[ReadyEnv, str]] = (), *, fill: bool = True
    ) -> None:
        """The one place that executes the pool's decisions: delete these envs (with
        why), start the builds it wants now, and wake up when its backoff ends."""
        for env, why in delete:
            log.info("deleting %s (%s)", env.path.name, why)
            self.discard(env.path)
        if self.stopping() or not runtime.ready or not fill:
            return
        now = time.monotonic()
        decision = runtime.pool.fill(now, new_env_id)
        for env_id in decision.build:
            runtime.builds[env_id] = self.spawn(
                self._build(runtime, env_id),
                name=f"build:{runtime.name}-{env_id}",
                on_error=functools.partial(self._build_crashed, runtime, env_id),
            )
        if decision.wake_at is not None and runtime.wakeup is None:

            def wake() -> None:
                runtime.wakeup = None
                self.carry_out(runtime)

            runtime.wakeup = asyncio.get_running_loop().call_later(max(0.0, decision.wake_at - now), wake)

    async def _record(self, path: Path) -> bool:
        """Record in the session that the env may be handed out; False if that fails."""
        try:
            await asyncio.to_thread(self.record_pooled, path)
        except OSError as exc:
            log.error("cannot record %s in the session file (%s); deleting it", path.name, exc)
            return False
        return True

    def _build_crashed(self, runtime: BackendRuntime, env_id: str, exc: BaseException) -> None:
        """A build task died of something unforeseen: its slot must not stay warming."""
        runtime.builds.pop(env_id, None)
        runtime.tracks.pop(env_id, None)
        if env_id in runtime.pool.warming:
            failure = Failure(ErrorKind.SETUP_FAILED, f"internal error: {type(exc).__name__}: {exc}")
            runtime.pool.build_failed(env_id, failure, time.monotonic())
            self.usage.build_failed(runtime.name, failure.kind)

    async def _build(self, runtime: BackendRuntime, env_id: str) -> None:
        path = self.env_path(runtime.name, env_id)
        started = time.monotonic()
        track = runtime.tracks[env_id] = BuildTrack(started=started)

        def progress(report: Progress) -> None:
            log.debug("build %s: %s", path.name, report.message)
            track.advance(report.phase, report.message, time.monotonic())

        delete: list[tuple[ReadyEnv, str]] = []
        try:
            result = await runtime.worker.submit(
                CreateEnv(env_id=env_id, path=path, config=runtime.config),
                timeout=runtime.config.build_timeout,
                progress=progress,
            )
        except BackendError as exc:
            self.discard(path)
            if self.stopping():
                runtime.pool.build_abandoned(env_id)
            else:
                # A dead worker is restarted with its own backoff (and marked failed if it
                # keeps dying); builds resume as soon as it is back.
                runtime.pool.build_failed(env_id, exc.failure, time.monotonic(), back_off=exc.kind != ErrorKind.CRASHED)
                self.usage.build_failed(runtime.name, exc.kind)
                log.error(
                    "build of %s failed [%s]%s: %s", path.name, exc.kind,
                    f" (package {exc.package})" if exc.package else "", exc.message,
                )  # fmt: skip
        except Exception as exc:
            log.exception("build of %s failed unexpectedly", path.name)
            self.discard(path)
            failure = Failure(ErrorKind.SETUP_FAILED, f"internal error: {type(exc).__name__}: {exc}")
            runtime.pool.build_failed(env_id, failure, time.monotonic())
            self.usage.build_failed(runtime.name, failure.kind)
        else:
            manifest = result.manifest
            recorded = await self._record(path)
            if not recorded:
                runtime.pool.build_abandoned(env_id)
                self.discard(path)
            elif manifest.spec_hash != runtime.spec_hash:
                # The config changed while it was building: not a failure, just not wanted.
                runtime.pool.build_abandoned(env_id)
                log.info("discarding %s: built for a previous config", path.name)
                self.discard(path)
            else:
                env = ReadyEnv(path=path, manifest=manifest)
                delete = [
                    (gone, "surplus" if gone.id == env_id else "replaced") for gone in runtime.pool.build_succeeded(env)
                ]
                now = time.monotonic()
                log.info("built %s in %.2fs", path.name, now - started)
                self.usage.build(runtime.name, track.finish(now), now - started)
                self.measure(path)
        finally:
            runtime.builds.pop(env_id, None)
            runtime.tracks.pop(env_id, None)
        self.carry_out(runtime, delete)
        await runtime.notify()
