"""An in-process stand-in for a backend's worker, for supervisor unit tests (no subprocess).

It answers the same typed jobs as ``runtimed.workers.child``: the spec hash is derived
from the configured packages, ``create`` writes a tiny but real env dir (a
``bin/python`` file and a manifest written last), ``validate`` checks it. Tests
steer it: hold builds until released, make the next builds fail with a given
kind, crash it (failing the jobs in flight, as a dead worker process does) and
bring it back up.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from runtimed.config import SupervisionConfig
from runtimed.core.failure import BackendError, ErrorKind
from runtimed.core.phases import BuildPhase
from runtimed.core.records import Manifest, WorkerState
from runtimed.envs.envdir import write_manifest
from runtimed.protocol.jobs import (
    ComputeSpecHash,
    CreateEnv,
    EnvCreated,
    Operation,
    Progress,
    Ready,
    SpecHash,
    Validated,
    ValidateEnv,
)
from runtimed.protocol.messages import WorkerStatus
from runtimed.util.files import now_iso

R = TypeVar("R")


def spec_hash_of(packages: list[str]) -> str:
    return hashlib.sha256(repr(sorted(packages)).encode()).hexdigest()[:16]


class FakeWorker:
    def __init__(self, name: str, on_ready: Callable[[Ready], Awaitable[None]], supervision: SupervisionConfig):
        self.name = name
        self.on_ready = on_ready
        self.supervision = supervision
        self.ready: Ready | None = None
        self.state = WorkerState.STARTING
        self.last_exit: str | None = None
        self.jobs: list[Operation[Any]] = []
        self.hold = False  # builds wait in `held` until released
        self.held: list[asyncio.Future[None]] = []
        self.fail_next: list[BackendError] = []  # the next builds fail with these, in order
        self.invalid: set[str] = set()  # env ids whose validation fails
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._stopped = asyncio.Event()
        self._ready_task: asyncio.Task[None] | None = None
        self.auto_up = True  # False: run() waits for `come_up()` from the test

    # ------------------------------------------------------------ Worker protocol

    async def run(self) -> None:
        if self.auto_up:
            await self.come_up()
        await self._stopped.wait()
        self.state = WorkerState.STOPPED

    async def come_up(self) -> None:
        self.ready = Ready(backend=self.name, version="1.0", available=True)
        self.state = WorkerState.RUNNING
        # Like WorkerHandle: on_ready runs as a task (it submits jobs).
        self._ready_task = asyncio.ensure_future(self.on_ready(self.ready))

    async def stop(self) -> None:
        self._stopped.set()
        self._fail_in_flight("stopped")

    def status(self) -> WorkerStatus:
        return WorkerStatus(state=self.state.value, pid=None, last_exit=self.last_exit)

    async def submit(
        self,
        operation: Operation[R],
        *,
        timeout: float | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> R:
        self.jobs.append(operation)
        if self.ready is None:
            raise BackendError(ErrorKind.CRASHED, f"worker {self.name} is not running ({self.state})")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._in_flight.add(future)
        task = asyncio.ensure_future(self._answer(operation, progress or (lambda _p: None)))
        task.add_done_callback(lambda t: _settle(future, t))
        try:
            result: R = await future
            return result
        finally:
            self._in_flight.discard(future)
            task.cancel()

    # ------------------------------------------------------------ steering

    def crash(self, how: str = "killed by SIGKILL") -> None:
        """The worker process died: jobs in flight fail as ``crashed``."""
        self.ready = None
        self.state = WorkerState.RESTARTING
        self.last_exit = how
        self._fail_in_flight(how)

    def release_held(self) -> None:
        held, self.held = self.held, []
        for future in held:
            if not future.done():
                future.set_result(None)

    def creates(self) -> list[CreateEnv]:
        return [job for job in self.jobs if isinstance(job, CreateEnv)]

    # ------------------------------------------------------------ internals

    def _fail_in_flight(self, how: str) -> None:
        for future in list(self._in_flight):
            if not future.done():
                future.set_exception(BackendError(ErrorKind.CRASHED, f"worker {self.name} died ({how})"))

    async def _answer(self, operation: Operation[Any], progress: Callable[[Progress], None]) -> object:
        if isinstance(operation, ComputeSpecHash):
            return SpecHash(spec_hash=spec_hash_of(operation.config.packages))
        if isinstance(operation, ValidateEnv):
            if operation.path.name.rsplit("-", 1)[-1] in self.invalid:
                raise BackendError(ErrorKind.SETUP_FAILED, "warm-up import failed")
            return Validated()
        if isinstance(operation, CreateEnv):
            # Phases as a real worker reports them: creating, then installing (where held builds wait).
            progress(Progress(id=operation.env_id, message="creating", phase=BuildPhase.CREATING))
            operation.path.mkdir(parents=True)
            (operation.path / "bin").mkdir()
            (operation.path / "bin" / "python").write_text("#!/bin/sh\n")
            progress(Progress(id=operation.env_id, message="fake install", phase=BuildPhase.INSTALLING))
            if self.hold:
                gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self.held.append(gate)
                await gate
            if self.fail_next:
                raise self.fail_next.pop(0)
            manifest = Manifest(
                env_type=self.name,
                id=operation.env_id,
                spec_hash=spec_hash_of(operation.config.packages),
                python_path=str(operation.path / "bin" / "python"),
                packages=sorted(operation.config.packages),
                created_at=now_iso(),
            )
            write_manifest(operation.path, manifest)
            return EnvCreated(manifest=manifest)
        raise BackendError(ErrorKind.SETUP_FAILED, f"unknown op {operation!r}")


def _settle(future: asyncio.Future[Any], task: asyncio.Future[Any]) -> None:
    if future.done() or task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(task.result())
