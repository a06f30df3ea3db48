"""Project envs: the closest project file above a notebook, read by its backend's
worker, approved by the user, served from a warm set keyed by the project's content.

One code path for every front end: the provisioner sends the notebook's directory,
the argv launcher (VS Code) its cwd, both as ``TakeKernel.project_dir``. The walk
(:func:`runtimed.deps.project.find_candidates`) names candidates closest first; each
is read by its backend's worker (``ReadProject``: plugin code never runs here) until
one is a project of its backend. Its key (:func:`runtimed.core.project.project_key`:
backend, path, bytes of the file and its lock) names its approval (``runtimed trust
FILE``) and its warm set in :class:`~runtimed.daemon.extras.ExtrasTaker`, so every
notebook of the project shares the set, an edited file makes a new set, and once the
new set has an env ready the old set's envs are deleted (a kernel's env is deleted
when the kernel ends, as for every kernel).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from runtimed.config import Config
from runtimed.core.failure import BackendError
from runtimed.core.project import ProjectSpec, project_key
from runtimed.daemon.extras import ExtrasTaker
from runtimed.daemon.runtime import BackendRuntime
from runtimed.deps.project import Candidate, find_candidates, malformed_project_message, untrusted_project_message
from runtimed.deps.trust import TRUST_FILE_ENV, TrustStore, TrustStoreError
from runtimed.kernels.table import ProjectFound
from runtimed.protocol.jobs import ProjectRead, ReadProject
from runtimed.protocol.messages import EnvReply, PackageOptions, PooledEnv, Take

__all__ = ["ProjectServer"]

log = logging.getLogger("runtimed.daemon.supervisor")

READ_TIMEOUT_S = 30.0
MAX_CACHED_READS = 256

# What a project file was read as, and its key; or why it could not be read.
Read = tuple[ProjectRead, str] | ProjectFound
Signature = tuple[tuple[str, int, int, int] | tuple[str], ...]


def _signature(paths: tuple[Path, ...]) -> Signature:
    """What tells a changed file: inode, size and mtime of each path (gone: its name alone)."""
    found: list[tuple[str, int, int, int] | tuple[str]] = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            found.append((str(path),))
            continue
        found.append((str(path), st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(found)


class ProjectServer:
    """Answers the kernel keeper's ``find_project(start_dir)`` and ``take_project(found)``."""

    def __init__(
        self,
        *,
        runtimes: Mapping[str, BackendRuntime],
        extras: ExtrasTaker,
        config: Callable[[], Config],
        trust_file: Path,
    ) -> None:
        self.runtimes = runtimes
        self.extras = extras
        self.config = config
        # (backend, file) -> (signature of the file and its inputs, those paths, what was read)
        self._reads: dict[tuple[str, Path], tuple[Signature, tuple[Path, ...], Read]] = {}
        self.trust_file = Path(os.environ[TRUST_FILE_ENV]) if os.environ.get(TRUST_FILE_ENV) else trust_file

    async def take(self, found: ProjectFound) -> PooledEnv | str:
        """An env of the approved project ``found`` (:meth:`find`), from its warm set or
        installed now, leased to the daemon; else why not."""
        assert found.spec is not None
        spec, runtime = found.spec, self.runtimes[found.backend]
        options = PackageOptions(requires_python=spec.requires_python, exclude_newer=spec.exclude_newer)
        request = Take(env_type=runtime.name, lease_pid=os.getpid(), packages=list(spec.packages),
                       channels=list(spec.channels), options=options)  # fmt: skip
        reply = await self.extras.take(runtime, request, os.getpid(), project=(found.key, spec))
        return reply.env if isinstance(reply, EnvReply) else reply.message

    async def find(self, start_dir: str) -> ProjectFound | None:
        """The closest project above ``start_dir``: approved (its ``key`` and ``spec``),
        or why a base kernel serves it (``notice``); None when there is none."""
        claims = self._claims()
        if not claims:
            return None
        candidates = await asyncio.to_thread(find_candidates, Path(start_dir), claims)
        for candidate in candidates:
            read = await self._read(candidate)
            if isinstance(read, ProjectFound):
                return read
            if read[0].spec is not None:
                return await self._approved(self.runtimes[candidate.backend], read[0].spec, read[1])
        return None

    def _claims(self) -> list[tuple[str, str]]:
        """(backend, file name) for every running backend that reads project files."""
        return [
            (name, file)
            for name, runtime in self.runtimes.items()
            if (ready := runtime.worker.ready) is not None and ready.available
            for file in ready.project_files
        ]

    async def _read(self, candidate: Candidate) -> Read:
        """What the candidate declares, and its key (:func:`project_key`): read by its
        backend's worker and hashed once, then again only when the file or one of its
        inputs (its lock) changed."""
        slot = (candidate.backend, candidate.path)
        cached = self._reads.get(slot)
        if cached is not None and cached[0] == _signature(cached[1]):
            return cached[2]
        before = _signature((candidate.path,))
        read = await self._read_now(candidate)
        paths = (candidate.path, *(read[0].spec.inputs if isinstance(read, tuple) and read[0].spec else ()))
        signature = _signature(paths)
        if signature[:1] == before:  # not changed while it was read
            self._reads[slot] = (signature, paths, read)
            while len(self._reads) > MAX_CACHED_READS:
                del self._reads[next(iter(self._reads))]
        return read

    async def _read_now(self, candidate: Candidate) -> Read:
        worker = self.runtimes[candidate.backend].worker
        try:
            read = await worker.submit(ReadProject(file=candidate.path), timeout=READ_TIMEOUT_S)
            key = await asyncio.to_thread(project_key, candidate.backend, read.spec) if read.spec else ""
        except (BackendError, OSError) as exc:
            message = exc.failure.message if isinstance(exc, BackendError) else str(exc)
            log.warning("the project file %s could not be read: %s", candidate.path, message)
            return ProjectFound(
                str(candidate.path), candidate.backend, notice=malformed_project_message(candidate.path, message)
            )
        return read, key

    async def _approved(self, runtime: BackendRuntime, spec: ProjectSpec, key: str) -> ProjectFound | None:
        file, backend = str(spec.file), runtime.name
        if not (spec.packages or spec.pypi_packages):
            return None  # a project that declares nothing: a plain kernel
        if not await asyncio.to_thread(self._trusted, key):
            log.warning("the project %s is not approved (key %s)", file, key[:12])
            return ProjectFound(file, backend, notice=untrusted_project_message(spec, backend))
        return ProjectFound(file, backend, key=key, spec=spec)

    def _trusted(self, key: str) -> bool:
        store = TrustStore(self.trust_file, enabled=self.config().daemon.trust_notebooks)
        try:
            return store.is_trusted_key(key)
        except TrustStoreError as exc:
            log.warning("%s; the project's packages are not installed", exc)
            return False
