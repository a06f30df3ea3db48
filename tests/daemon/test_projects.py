"""The daemon's project reads: a project file is read by its backend's worker once,
and again only when it or its lock changes (pure bookkeeping around a stand-in
worker that counts its jobs; the real worker path is tests/kernels/test_projects.py)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from runtimed.config import Config
from runtimed.core.project import ProjectSpec
from runtimed.daemon.projects import ProjectServer
from runtimed.protocol.jobs import ProjectRead, ReadProject, Ready


class CountingWorker:
    """Reads ``pyproject.toml`` as the uv backend would (its one dependency line)."""

    def __init__(self) -> None:
        self.ready = Ready(backend="uv", version="0", available=True, project_files=["pyproject.toml"])
        self.reads = 0

    async def submit(self, job: ReadProject, timeout: float) -> ProjectRead:
        self.reads += 1
        lock = job.file.with_name("uv.lock")
        deps = tuple(job.file.read_text().split())
        return ProjectRead(ProjectSpec(file=job.file, packages=deps, inputs=(job.file, lock)))


class Runtime:
    def __init__(self) -> None:
        self.name = "uv"
        self.worker = CountingWorker()


def server(tmp_path: Path) -> tuple[ProjectServer, CountingWorker]:
    runtime = Runtime()
    found: Any = {"uv": runtime}
    return ProjectServer(runtimes=found, extras=Any, config=Config, trust_file=tmp_path / "t.json"), runtime.worker


def test_a_project_is_read_once_until_it_or_its_lock_changes(tmp_path: Path) -> None:
    projects, worker = server(tmp_path)
    (tmp_path / ".git").mkdir()
    file = tmp_path / "pyproject.toml"
    file.write_text("six")
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()

    def find() -> Any:
        return asyncio.run(projects.find(str(nb_dir)))

    first = find()
    assert find() == first and worker.reads == 1  # not approved: a notice, read once
    file.write_text("six idna")
    assert "idna" in find().notice and worker.reads == 2
    find()
    (tmp_path / "uv.lock").write_text("lock")  # an input appears
    find()
    assert worker.reads == 3
    os.utime(file, ns=(1, 1))
    find()
    assert worker.reads == 4
