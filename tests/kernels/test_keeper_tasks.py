"""The keeper's background tasks are a TaskSet: a task that fails is logged (as the
keeper's), not dropped. No kernel starts here: the env's python does not exist."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from runtimed.kernels.keeper import EnvAccess, KernelKeeper
from runtimed.protocol.messages import PooledEnv

BACKEND = "fake"


class BrokenEnvs:
    """Envs whose python is missing (the start fails) and whose discard then fails too."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def take(self, backend: str, wait_s: float) -> PooledEnv | None:
        path = self.root / "env"
        return PooledEnv(env_type=backend, venv_path=str(path), python_path=str(path / "no-python"), id="")

    def discard(self, path: Path) -> None:
        raise RuntimeError(f"discarding {path} broke")

    def access(self) -> EnvAccess:
        return EnvAccess(take=self.take, lease=lambda _p, _pid: None, discard=self.discard, activation=lambda _e: {})


def test_a_failing_prestart_task_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def failures() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "runtimed.kernels" and "background task" in r.getMessage()]

    async def scenario() -> None:
        keeper = KernelKeeper(tmp_path / "kernels", BrokenEnvs(tmp_path).access(), lambda: 1.0)
        keeper.run({BACKEND: 1})
        try:
            for _ in range(200):  # the first start fails at once; give up after 10 s
                if failures():
                    break
                await asyncio.sleep(0.05)
        finally:
            await keeper.stop()

    with caplog.at_level(logging.ERROR):
        asyncio.run(scenario())
    found = failures()
    assert found, [r.getMessage() for r in caplog.records]
    assert found[0].exc_info is not None and "discarding" in str(found[0].exc_info[1])
