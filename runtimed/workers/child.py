"""A backend's worker process: ``python -m runtimed.workers.child BACKEND``.

Loads exactly one backend through pluggy, says ``ready``, then runs the jobs the
supervisor writes to its stdin (concurrently, in threads: builds wait on
subprocesses) and writes progress and results to stdout. It holds no pool state:
killing it loses only the jobs in flight. Exits when stdin closes.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from runtimed.backend import Backend, BackendError, BuildRequest, ErrorKind, ExtrasRequest
from runtimed.core.failure import Failure
from runtimed.envs.build import build_env
from runtimed.envs.bytecode_store import store_for_backend_cache
from runtimed.envs.extras import add_extras
from runtimed.envs.plugins import load_backend
from runtimed.protocol.jobs import (
    JOB_TYPES,
    PIPE_MAX_LINE,
    ComputeSpecHash,
    CreateEnv,
    EnvCreated,
    ExtrasInstalled,
    Failed,
    InstallExtras,
    Job,
    Operation,
    Progress,
    ProjectRead,
    ReadProject,
    Ready,
    SpecHash,
    Validated,
    ValidateEnv,
    done_for,
    operation_of,
)
from runtimed.protocol.messages import LineDecoder, ProtocolError, encode

__all__ = ["WorkerLoop", "main"]

log = logging.getLogger("runtimed.workers.child")

EXIT_LOAD_FAILED = 3
LOAD_FAILED = "cannot load backend "  # stderr prefix that `runtimed plugins list` reports


class WorkerLoop:
    """Reads jobs from ``stdin``, runs them on ``backend``, writes replies to ``stdout``."""

    def __init__(self, backend: Backend, cache_dir: Path, stdin: BinaryIO, stdout: BinaryIO, concurrency: int):
        self.backend = backend
        self.cache_dir = cache_dir
        self.stdin = stdin
        self.stdout = stdout
        self._write_lock = threading.Lock()
        self._active_lock = threading.Lock()
        self._active = 0
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="job")

    def send(self, message: Any) -> None:
        data = encode(message)
        with self._write_lock:
            self.stdout.write(data)
            self.stdout.flush()

    def run(self) -> None:
        decoder = LineDecoder(types=JOB_TYPES, max_line=PIPE_MAX_LINE)
        while True:
            data = self.stdin.read1(65536) if hasattr(self.stdin, "read1") else self.stdin.read(65536)
            if not data:
                break
            for event in decoder.feed(data):
                if isinstance(event, ProtocolError):
                    log.error("bad line from supervisor: %s", event.message)
                    continue
                self._pool.submit(self._run_job, event)
        # stdin closed: the supervisor stopped us or died. Jobs still running must not
        # go on writing into env dirs the next supervisor will delete: end them, and
        # every tool they started, now.
        with self._active_lock:
            busy = self._active
        if busy and os.getpgrp() == os.getpid():
            log.warning("supervisor went away with %d job(s) running; killing them", busy)
            os.killpg(os.getpgrp(), signal.SIGKILL)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run_job(self, job: Job) -> None:
        with self._active_lock:
            self._active += 1
        try:
            self._reply(job)
        finally:
            with self._active_lock:
                self._active -= 1

    def _reply(self, job: Job) -> None:
        try:
            operation = operation_of(job)
        except ValueError as exc:  # an unknown op or bad args: that job fails, the worker goes on
            log.error("job %s rejected: %s", job.id, exc)
            self.send(Failed(id=job.id, failure=Failure(ErrorKind.SETUP_FAILED, str(exc))))
            return
        try:
            result = self._dispatch(job, operation)
        except BackendError as exc:
            self.send(Failed(id=job.id, failure=exc.failure))
        except Exception as exc:  # never let a job kill the worker silently
            log.exception("job %s (%s) raised", job.id, job.op)
            self.send(Failed(id=job.id, failure=Failure(ErrorKind.SETUP_FAILED, f"{type(exc).__name__}: {exc}")))
        else:
            self.send(done_for(job.id, result))

    def _dispatch(self, job: Job, operation: Operation[Any]) -> object:
        if isinstance(operation, ComputeSpecHash):
            return SpecHash(spec_hash=self.backend.spec_hash(operation.config))
        if isinstance(operation, CreateEnv):
            request = BuildRequest(
                env_id=operation.env_id,
                path=operation.path,
                config=operation.config,
                cache_dir=self.cache_dir,
                progress=lambda message: self.send(Progress(id=job.id, message=message)),
                bytecode_store=store_for_backend_cache(self.cache_dir),
                phase=lambda phase: self.send(Progress(id=job.id, message=phase.value, phase=phase)),
            )
            log.info("creating %s", request.path)
            return EnvCreated(manifest=build_env(self.backend, request))
        if isinstance(operation, ValidateEnv):
            self.backend.validate(operation.path)
            return Validated()
        if isinstance(operation, InstallExtras):
            return self._install_extras(job, operation)
        if isinstance(operation, ReadProject):
            return self._read_project(operation)
        raise BackendError(ErrorKind.SETUP_FAILED, f"no handler for job op {job.op!r}")

    def _install_extras(self, job: Job, operation: InstallExtras) -> ExtrasInstalled:
        request = ExtrasRequest(
            path=operation.path,
            packages=tuple(operation.packages),
            config=operation.config,
            cache_dir=self.cache_dir,
            channels=tuple(operation.channels),
            progress=lambda message: self.send(Progress(id=job.id, message=message)),
            requires_python=operation.options.requires_python,
            exclude_newer=operation.options.exclude_newer,
            pypi_packages=operation.project.pypi_packages if operation.project else (),
            project=operation.project,
        )
        log.info("install_extras job: %s into %s", " ".join(operation.packages), operation.path)
        store = store_for_backend_cache(self.cache_dir)
        return ExtrasInstalled(manifest=add_extras(self.backend, request, operation.key, store))

    def _read_project(self, operation: ReadProject) -> ProjectRead:
        """The backend's reading; a malformed file (``ValueError``, a TOML or YAML
        error) fails the job with the parser's message."""
        try:
            return ProjectRead(spec=self.backend.read_project(operation.file))
        except (ValueError, OSError) as exc:
            raise BackendError(ErrorKind.SETUP_FAILED, str(exc) or type(exc).__name__) from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runtimed.workers.child",
        description="Run one runtimed backend's jobs over stdin/stdout (started by the supervisor).",
    )
    parser.add_argument("backend", help="backend (entry-point) name")
    parser.add_argument("--cache-dir", type=Path, help="the backend's cache directory (required to run jobs)")
    parser.add_argument("--concurrency", type=int, default=1, help="jobs run at once")
    parser.add_argument("--describe", action="store_true", help="print the backend's 'ready' line (or fail) and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    stdout = sys.stdout.buffer
    # Keep stray prints (from plugins or libraries) off the protocol pipe.
    sys.stdout = sys.stderr
    try:
        backend = load_backend(args.backend)
        availability = backend.availability()
    except Exception as exc:  # PluginLoadError, or the plugin raising in availability()
        log.error("%s%s: %s", LOAD_FAILED, args.backend, exc)
        return EXIT_LOAD_FAILED
    ready = Ready(
        backend=backend.name,
        version=backend.version,
        available=availability.ok,
        reason=availability.reason,
        detail=availability.detail,
        project_files=list(backend.project_files),
    )
    if args.describe:
        stdout.write(encode(ready))
        stdout.flush()
        return 0
    if args.cache_dir is None:
        parser.error("--cache-dir is required to run jobs")
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        backend.prepare(args.cache_dir)
    except Exception:
        log.exception("backend %s: prepare() failed", args.backend)
    loop = WorkerLoop(backend, args.cache_dir, sys.stdin.buffer, stdout, args.concurrency)
    loop.send(ready)
    loop.run()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
