"""KernelKeeper in-process, with a fake env supply (EnvAccess) and real kernel processes.

The keeper's collaborators are the env pools; here ``take`` hands out a fresh env
name each time, all running one real venv (made once per session from the warm uv
cache) that has ipykernel. The kernels, their control channels and their signals
are real; what is checked is the keeper's own bookkeeping: refills, leases, which
env is discarded when, and which processes end.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

from runtimed.kernels.keeper import EnvAccess, KernelKeeper
from runtimed.kernels.process import HOST_SCRIPT, KernelState, read_record
from runtimed.protocol.messages import LaunchedKernel, PooledEnv, TakeKernel

T = TypeVar("T")
BACKEND = "fake"


@pytest.fixture(scope="session")
def kernel_python(tmp_path_factory: pytest.TempPathFactory, uv_cache: Path) -> str:
    """A real venv with ipykernel, built offline from the session's uv cache."""
    from runtimed_uv.backend import find_uv

    uv = find_uv()
    assert uv
    venv = tmp_path_factory.mktemp("keeper") / "venv"
    env = {**os.environ, "UV_CACHE_DIR": str(uv_cache)}
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], env=env, check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([uv, "pip", "install", "--quiet", "--offline", "--python", python, "ipykernel"], env=env, check=True)
    return python


class FakeEnvs:
    """Env supply for the keeper: records every take, lease and discard."""

    def __init__(self, root: Path, python: str, supply: int = 1000) -> None:
        self.root = root
        self.python = python
        self.supply = supply  # envs left to hand out
        self.taken: list[Path] = []
        self.leases: dict[Path, int] = {}
        self.discarded: list[Path] = []

    async def take(self, backend: str, wait_s: float) -> PooledEnv | None:
        assert backend == BACKEND
        if self.supply <= 0:
            return None
        self.supply -= 1
        path = self.root / f"runtimed-{backend}-{len(self.taken):04d}"
        path.mkdir(parents=True)
        self.taken.append(path)
        return PooledEnv(env_type=backend, venv_path=str(path), python_path=self.python, id=path.name)

    def lease(self, path: Path, pid: int) -> None:
        assert path in self.taken and path not in self.discarded
        self.leases[path] = pid

    def discard(self, path: Path) -> None:
        assert path not in self.discarded, f"{path} discarded twice"
        self.discarded.append(path)

    def activation(self, env: PooledEnv) -> Mapping[str, str]:
        return {"VIRTUAL_ENV": str(Path(self.python).parent.parent), "RUNTIMED_FAKE_ENV": env.venv_path}

    def access(self) -> EnvAccess:
        return EnvAccess(take=self.take, lease=self.lease, discard=self.discard, activation=self.activation)


async def _until(predicate: Callable[[], T], what: str, timeout: float = 120.0) -> T:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := predicate()):
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return value


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _run(
    tmp_path: Path,
    python: str,
    scenario: Callable[[KernelKeeper, FakeEnvs], Awaitable[None]],
    *,
    grace_s: float = 30.0,
) -> FakeEnvs:
    """Run ``scenario`` on a started keeper; afterwards stop it and end every kernel it made."""
    envs = FakeEnvs(tmp_path / "envs", python)
    keeper = KernelKeeper(tmp_path / "kernels", envs.access(), lambda: grace_s)
    pids: set[int] = set()

    async def main() -> None:
        try:
            await scenario(keeper, envs)
        finally:
            pids.update(k.record.pid for k in keeper.kernels.values())
            await keeper.stop()
            for pid in pids:  # handed-out kernels outlive stop(): end them here
                if _running(pid):
                    os.kill(pid, signal.SIGKILL)

    asyncio.run(main())
    return envs


def _take(keeper: KernelKeeper, owner: int | None = None) -> Awaitable[LaunchedKernel | None]:
    request = TakeKernel(env_type=BACKEND, env=dict(os.environ), owner_pid=owner or os.getpid())
    return keeper.take(request, None)


def _available(keeper: KernelKeeper) -> int:
    return keeper.status(BACKEND).available


def test_refills_after_a_hand_out_and_leases_the_env_to_the_kernel(tmp_path: Path, kernel_python: str) -> None:
    async def scenario(keeper: KernelKeeper, envs: FakeEnvs) -> None:
        await keeper.start({BACKEND: 1})
        await _until(lambda: _available(keeper) == 1, "a pre-started kernel")
        first = envs.taken[0]
        assert envs.leases[first] == keeper.kernels[next(iter(keeper.kernels))].record.pid
        kernel = await _take(keeper)
        assert kernel is not None and kernel.prestarted and kernel.env.venv_path == str(first)
        assert envs.leases[first] == kernel.pid  # the env belongs to the kernel's process
        record = read_record(Path(kernel.log_file).parent)
        assert record is not None and record.state is KernelState.HANDED_OUT and record.owner_pid == os.getpid()
        await _until(lambda: _available(keeper) == 1, "the refill")
        assert len(envs.taken) == 2 and envs.discarded == []
        status = keeper.status(BACKEND)
        assert (status.handed_out, status.target, status.starting) == (1, 1, 0)

    _run(tmp_path, kernel_python, scenario)


def test_env_is_discarded_when_its_kernel_dies(tmp_path: Path, kernel_python: str) -> None:
    async def scenario(keeper: KernelKeeper, envs: FakeEnvs) -> None:
        await keeper.start({BACKEND: 1})
        await _until(lambda: _available(keeper) == 1, "a pre-started kernel")
        kernel = await _take(keeper)
        assert kernel is not None
        idle = await _until(lambda: _available(keeper) == 1 and envs.taken[1], "the refill")
        idle_pid = envs.leases[idle]

        os.kill(kernel.pid, signal.SIGKILL)  # a handed-out kernel ends
        await _until(lambda: Path(kernel.env.venv_path) in envs.discarded, "its env discarded")
        assert kernel.id not in keeper.kernels and not Path(kernel.log_file).parent.exists()
        assert idle not in envs.discarded

        os.kill(idle_pid, signal.SIGKILL)  # an idle one dies on its own: discarded and replaced
        await _until(lambda: idle in envs.discarded, "the idle kernel's env discarded")
        await _until(lambda: _available(keeper) == 1 and len(envs.taken) == 3, "a replacement kernel")

    _run(tmp_path, kernel_python, scenario)


def test_resize_down_stops_idle_kernels(tmp_path: Path, kernel_python: str) -> None:
    async def scenario(keeper: KernelKeeper, envs: FakeEnvs) -> None:
        await keeper.start({BACKEND: 2})
        await _until(lambda: _available(keeper) == 2, "two pre-started kernels")
        pids = [envs.leases[path] for path in envs.taken]
        keeper.configure({BACKEND: 1})
        await _until(lambda: sum(map(_running, pids)) == 1, "one kernel stopped")
        assert len(envs.discarded) == 1 and _available(keeper) == 1
        keeper.configure({BACKEND: 0})
        await _until(lambda: not any(map(_running, pids)), "every idle kernel stopped")
        assert sorted(envs.discarded) == sorted(envs.taken) and keeper.kernels == {}
        await asyncio.sleep(1.0)
        assert len(envs.taken) == 2, "a kernel was started with kernels = 0"

    _run(tmp_path, kernel_python, scenario)


def test_owner_death_shuts_the_kernel_down_after_the_grace(tmp_path: Path, kernel_python: str) -> None:
    grace = 2.0

    async def scenario(keeper: KernelKeeper, envs: FakeEnvs) -> None:
        await keeper.start({BACKEND: 1})
        await _until(lambda: _available(keeper) == 1, "a pre-started kernel")
        owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        kernel = await _take(keeper, owner=owner.pid)
        assert kernel is not None
        owner.kill()
        owner.wait()
        dead_at = asyncio.get_running_loop().time()
        await asyncio.sleep(0.6)  # more than a watch interval, far less than the grace
        assert _running(kernel.pid), "the kernel was ended before the grace"
        await _until(lambda: not _running(kernel.pid), "the kernel shut down")
        assert asyncio.get_running_loop().time() - dead_at >= grace
        await _until(lambda: Path(kernel.env.venv_path) in envs.discarded, "its env discarded")
        assert kernel.id not in keeper.kernels

    _run(tmp_path, kernel_python, scenario, grace_s=grace)


def test_stop_ends_idle_kernels_and_leaves_handed_out_ones(tmp_path: Path, kernel_python: str) -> None:
    envs = FakeEnvs(tmp_path / "envs", kernel_python)
    keeper = KernelKeeper(tmp_path / "kernels", envs.access(), lambda: 30.0)

    async def main() -> tuple[LaunchedKernel, list[int]]:
        await keeper.start({BACKEND: 2})
        await _until(lambda: _available(keeper) == 2, "two pre-started kernels")
        kernel = await _take(keeper)
        assert kernel is not None
        await _until(lambda: _available(keeper) == 2, "the refill")
        idle = [k.record.pid for k in keeper.kernels.values() if k.record.state is KernelState.IDLE]
        await keeper.stop()
        return kernel, idle

    kernel, idle = asyncio.run(main())
    try:
        assert len(idle) == 2 and not any(map(_running, idle))
        assert _running(kernel.pid)
        assert Path(kernel.env.venv_path) not in envs.discarded  # still leased to the kernel
        assert len(envs.discarded) == 2
        record = read_record(Path(kernel.log_file).parent)
        assert record is not None and record.state is KernelState.HANDED_OUT  # for the next daemon
        assert [p.name for p in (tmp_path / "kernels").iterdir()] == [kernel.id]
    finally:
        os.kill(kernel.pid, signal.SIGKILL)


def test_a_launch_that_fails_after_the_env_was_taken_gives_it_back(tmp_path: Path) -> None:
    """An env taken for a kernel whose process cannot even start (here its python is
    gone) is discarded, and its kernel dir removed: nothing stays leased to the daemon."""

    async def scenario(keeper: KernelKeeper, envs: FakeEnvs) -> None:
        with pytest.raises(FileNotFoundError):
            await _take(keeper)
        assert envs.taken and envs.discarded == envs.taken
        assert not keeper.kernels
        assert not list((tmp_path / "kernels").iterdir())

    _run(tmp_path, str(tmp_path / "gone" / "python"), scenario)


@pytest.mark.parametrize("flag", ["--preimported", "--defer"])
def test_the_host_pre_imports_with_its_flag_or_the_old_one(kernel_python: str, flag: str) -> None:
    """``--preimported`` (``--defer`` in 0.1.0: a daemon that ran before an upgrade
    still passes it to the new host script)."""
    ours, theirs = socket.socketpair()
    command = [kernel_python, str(HOST_SCRIPT), "--control-fd", str(theirs.fileno()), flag]
    proc = subprocess.Popen(command, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
    theirs.close()
    try:
        with ours.makefile("rb") as channel:
            line = channel.readline()
        assert line, "the host exited without a word (its stderr is above)"
        assert json.loads(line)["event"] == "imported", line
    finally:
        ours.close()  # an unclaimed host exits when its channel closes
        assert proc.wait(30) == 0
