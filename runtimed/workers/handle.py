"""The supervisor's side of one worker process: spawn, talk, watch, restart, kill.

A :class:`WorkerHandle` keeps its worker running (``run()``): it starts
``python -m runtimed.workers.child NAME`` and restarts it when it dies, when
:class:`~runtimed.core.restarts.RestartPolicy` says (exponential backoff; ``failed``
after too many restarts in a window, retried after a cool-down). It kills its whole
process tree on a job timeout or memory overrun, and reports pid / RSS / CPU /
children through psutil.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import os
import signal
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import psutil

from runtimed.config import SupervisionConfig
from runtimed.core.failure import BackendError, ErrorKind
from runtimed.core.records import WorkerState
from runtimed.core.restarts import RestartLimits, RestartPolicy
from runtimed.protocol.jobs import (
    PIPE_MAX_LINE,
    WORKER_TYPES,
    Done,
    Failed,
    Operation,
    Progress,
    Ready,
    job_for,
    result_of,
)
from runtimed.protocol.messages import LineDecoder, ProtocolError, WorkerStatus, encode
from runtimed.util.liveness import same_process
from runtimed.util.proctree import children, describe_exit, exited, kill_process_tree
from runtimed.util.selfcmd import module_command

__all__ = ["WorkerHandle"]

R = TypeVar("R")

log = logging.getLogger("runtimed.workers")

READY_TIMEOUT_S = 60.0
WATCH_INTERVAL_S = 1.0
STDERR_LINES_KEPT = 20


def restart_limits(supervision: SupervisionConfig) -> RestartLimits:
    """The ``[supervision]`` keys the restart policy reads."""
    return RestartLimits(
        start_grace_s=supervision.start_grace_s,
        restart_base_s=supervision.restart_base_s,
        restart_cap_s=supervision.restart_cap_s,
        max_restarts=supervision.max_restarts,
        restart_window_s=supervision.restart_window_s,
        failed_cooldown_s=supervision.failed_cooldown_s,
    )


class WorkerHandle:
    """One backend's worker process, kept alive by :meth:`run`."""

    def __init__(
        self,
        name: str,
        cache_dir: Path,
        concurrency: int,
        supervision: SupervisionConfig,
        on_ready: Callable[[Ready], Coroutine[Any, Any, None]],
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.cache_dir = cache_dir
        self.concurrency = concurrency
        self._policy = RestartPolicy(restart_limits(supervision))
        self._supervision = supervision
        self.on_ready = on_ready
        self.env = env
        self.state = WorkerState.STARTING
        self.last_exit: str | None = None
        self.ready: Ready | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._psutil: psutil.Process | None = None
        self._started_at: float | None = None
        self._jobs: dict[str, tuple[asyncio.Future[Done], Callable[[Progress], None] | None]] = {}
        self._ids = itertools.count(1)
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)
        self._up = asyncio.Event()
        self._stopping = False
        self._ready_task: asyncio.Task[None] | None = None  # keeps the on_ready task referenced
        self._descendants: dict[int, float] = {}  # pid -> create time, seen under the worker

    # ------------------------------------------------------------ lifecycle

    @property
    def supervision(self) -> SupervisionConfig:
        return self._supervision

    @supervision.setter
    def supervision(self, supervision: SupervisionConfig) -> None:
        """A reloaded ``[supervision]``: the next restart decision follows it."""
        self._supervision = supervision
        self._policy.limits = restart_limits(supervision)

    @property
    def restarts(self) -> int:
        return self._policy.restarts

    async def run(self) -> None:
        """Start the worker and restart it whenever it dies, until :meth:`stop`:
        :class:`~runtimed.core.restarts.RestartPolicy` decides when, this carries it out."""
        while not self._stopping:
            started = time.monotonic()
            returncode = await self._run_once()
            if self._stopping:
                break
            stderr = " | ".join(list(self._stderr)[-5:])
            self.last_exit = describe_exit(returncode) + (f"; stderr: {stderr}" if stderr else "")
            restart = self._policy.died(started, time.monotonic())
            if restart.failed:
                self.state = WorkerState.FAILED
                log.error(
                    "worker %s failed %d times in %.0fs (%s); retrying in %.0fs",
                    self.name, restart.deaths_in_window, self._policy.limits.restart_window_s,
                    self.last_exit, restart.delay_s,
                )  # fmt: skip
            else:
                self.state = WorkerState.RESTARTING
                log.warning("worker %s died (%s); restarting in %.1fs", self.name, self.last_exit, restart.delay_s)
            await self._sleep_until(restart.at)
        self.state = WorkerState.STOPPED

    async def _sleep_until(self, end: float) -> None:
        """Until ``end`` (monotonic), or until :meth:`stop`."""
        while not self._stopping and time.monotonic() < end:
            await asyncio.sleep(min(0.2, end - time.monotonic()))

    async def _run_once(self) -> int | None:
        self.state = WorkerState.STARTING
        self._stderr.clear()
        env = dict(self.env if self.env is not None else os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        # Its cwd is its cache dir: nothing in the daemon's cwd can shadow what it (or
        # the env pythons it runs, e.g. the warm-up's `python -c`) imports. If that dir
        # cannot be made, the worker fails making it and says why (then is restarted).
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            cwd: Path | None = self.cache_dir
        except OSError:
            cwd = None
        command = module_command(
            "runtimed.workers.child",
            self.name,
            "--cache-dir",
            str(self.cache_dir),
            "--concurrency",
            str(self.concurrency),
        )
        self._proc = proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=env, start_new_session=True, cwd=cwd,
        )  # fmt: skip
        self._started_at = time.monotonic()
        try:
            self._psutil = psutil.Process(proc.pid)
            self._psutil.cpu_percent(None)  # prime the CPU counter
        except psutil.Error:
            self._psutil = None
        log.info("worker %s started (pid %d)", self.name, proc.pid)
        readers = [
            asyncio.create_task(self._read_stdout(proc)),
            asyncio.create_task(self._read_stderr(proc)),
            asyncio.create_task(self._watch(proc)),
            asyncio.create_task(self._ready_deadline(proc)),
        ]
        try:
            returncode = await exited(proc)
        finally:
            # Whatever it left behind (uv, solvers) goes with it, even if reparented.
            self._kill_leftovers(proc.pid)
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            self._up.clear()
            self.ready = None
            self._psutil = None
            self._started_at = None
            self._fail_all_jobs(describe_exit(proc.returncode))
        return returncode

    async def _ready_deadline(self, proc: asyncio.subprocess.Process) -> None:
        await asyncio.sleep(READY_TIMEOUT_S)
        if not self._up.is_set():
            log.error("worker %s did not become ready in %.0fs; killing it", self.name, READY_TIMEOUT_S)
            kill_process_tree(proc.pid)

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        """Every second: remember the worker's descendants (to kill them even if they
        get reparented when it dies) and enforce the memory limit on the whole tree."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            procs = self._tree()
            for p in procs[1:]:
                with contextlib.suppress(psutil.Error):
                    self._descendants[p.pid] = p.create_time()
            limit_mb = self.supervision.memory_limit_mb
            if not limit_mb:
                continue
            rss = 0
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    rss += p.memory_info().rss
            if rss > limit_mb * 1024 * 1024:
                log.error("worker %s uses %d MiB > limit %d MiB; killing it", self.name, rss >> 20, limit_mb)
                self._stderr.append(f"memory limit exceeded ({rss >> 20} MiB > {limit_mb} MiB)")
                self.kill()
                return

    def _tree(self) -> list[psutil.Process]:
        if self._psutil is None:
            return []
        try:
            return [self._psutil, *self._psutil.children(recursive=True)]
        except psutil.Error:
            return []

    def _kill_leftovers(self, pid: int) -> None:
        """Kill the worker's process group and every descendant seen alive."""
        kill_process_tree(pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # the worker leads its own group (start_new_session)
        for child_pid, create_time in self._descendants.items():
            child = same_process(child_pid, create_time)
            if child is not None:
                with contextlib.suppress(psutil.Error):
                    child.kill()
        self._descendants.clear()

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop for good: close stdin (the worker exits), then kill the tree if it lingers."""
        self._stopping = True
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()
        # In-flight builds would hold us up: kill their tools (uv, solvers) so the worker
        # can exit; the caller deletes the partial envs.
        for child in children(proc.pid):
            kill_process_tree(child.pid)
        try:
            await asyncio.wait_for(exited(proc), timeout)
        except asyncio.TimeoutError:
            self.kill()
            await exited(proc)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the worker's whole process tree (it is then restarted by :meth:`run`)."""
        if self._proc is not None and self._proc.returncode is None:
            kill_process_tree(self._proc.pid, sig)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, sig)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    # ------------------------------------------------------------ pipes

    async def _read_stdout(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        decoder = LineDecoder(types=WORKER_TYPES, max_line=PIPE_MAX_LINE)
        while data := await proc.stdout.read(65536):
            for event in decoder.feed(data):
                await self._handle(event)

    async def _handle(self, event: Any) -> None:
        if isinstance(event, ProtocolError):
            log.error("worker %s sent a bad line: %s", self.name, event.message)
        elif isinstance(event, Ready):
            self.ready = event
            self.state = WorkerState.RUNNING
            self._up.set()
            log.info("worker %s ready (version %s, available=%s)", self.name, event.version, event.available)
            # A task, not an await: on_ready submits jobs whose replies this reader delivers.
            self._ready_task = asyncio.create_task(self.on_ready(event))
        elif isinstance(event, Progress):
            entry = self._jobs.get(event.id)
            if entry and entry[1]:
                entry[1](event)
        elif isinstance(event, (Done, Failed)):
            entry = self._jobs.pop(event.id, None)
            if entry is None or entry[0].done():
                return
            if isinstance(event, Done):
                entry[0].set_result(event)
            else:
                entry[0].set_exception(BackendError.from_failure(event.failure))

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        wlog = logging.getLogger(f"runtimed.workers.child.{self.name}")
        while line := await proc.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            if text:
                self._stderr.append(text[-500:])
                wlog.info("%s", text)

    def _fail_all_jobs(self, reason: str) -> None:
        jobs, self._jobs = self._jobs, {}
        for future, _progress in jobs.values():
            if not future.done():
                stderr = " | ".join(list(self._stderr)[-3:])
                future.set_exception(
                    BackendError(
                        ErrorKind.CRASHED, f"worker {self.name} died ({reason})" + (f": {stderr}" if stderr else "")
                    )
                )

    # ------------------------------------------------------------ jobs

    async def submit(
        self,
        operation: Operation[R],
        *,
        timeout: float | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> R:
        """Run a job on the worker; raises :class:`BackendError` (``timeout``, ``crashed``, ...)."""
        proc = self._proc
        if proc is None or proc.returncode is not None or proc.stdin is None or not self._up.is_set():
            raise BackendError(ErrorKind.CRASHED, f"worker {self.name} is not running ({self.state})")
        job = job_for(f"{self.name}-{next(self._ids)}", operation)
        op = job.op
        future: asyncio.Future[Done] = asyncio.get_running_loop().create_future()
        self._jobs[job.id] = (future, progress)
        try:
            proc.stdin.write(encode(job))
            await proc.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            self._jobs.pop(job.id, None)
            raise BackendError(ErrorKind.CRASHED, f"worker {self.name} is gone: {exc}") from exc
        try:
            done = await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            self._jobs.pop(job.id, None)
            log.error(
                "job %s (%s) timed out after %.0fs; killing worker %s's process tree", job.id, op, timeout, self.name
            )
            self._stderr.append(f"job {op} timed out after {timeout:.0f}s")
            self.kill()
            raise BackendError(ErrorKind.TIMEOUT, f"{op} timed out after {timeout:.0f}s") from None
        try:
            return result_of(operation, done)
        except Exception as exc:  # a worker of another version, or a plugin writing to the pipe
            raise BackendError(ErrorKind.SETUP_FAILED, f"bad {op!r} result from worker {self.name}: {exc}") from exc

    # ------------------------------------------------------------ status

    def status(self) -> WorkerStatus:
        rss = cpu = None
        children = 0
        if self._psutil is not None:
            try:
                with self._psutil.oneshot():
                    rss = self._psutil.memory_info().rss
                    cpu = self._psutil.cpu_percent(None)
                children = len(self._psutil.children(recursive=True))
            except psutil.Error:
                pass
        return WorkerStatus(
            state=self.state,
            pid=self.pid,
            rss_bytes=rss,
            cpu_percent=cpu,
            children=children,
            restarts=self.restarts,
            uptime_s=round(time.monotonic() - self._started_at, 1) if self._started_at else None,
            last_exit=self.last_exit,
        )
