"""The supervisor in-process, with fake workers (tests/support/fakeworker.py): no
subprocess, no uv, each test runs in well under a second. The real-process suites
(test_supervisor.py, test_faults.py, ...) cover the same paths end to end."""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import textwrap
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from runtimed.config import Config, SupervisionConfig, parse_config
from runtimed.core.backoff import Backoff
from runtimed.core.failure import BackendError, ErrorKind
from runtimed.core.records import Lease, Manifest
from runtimed.daemon.runtime import Worker
from runtimed.daemon.supervisor import Supervisor
from runtimed.daemon.wiring import wire
from runtimed.envs.envdir import read_lease, scan_envs, write_lease, write_manifest
from runtimed.envs.leases import make_lease
from runtimed.envs.plugins import PluginInfo
from runtimed.protocol.messages import Empty, EnvReply, Error, Take
from runtimed.util.paths import Paths
from tests.support.fakeworker import FakeWorker, spec_hash_of


@pytest.fixture(autouse=True)
def _no_subprocess(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """These tests must not start any process: the seam is the worker factory."""

    def forbidden(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a supervisor unit test started a subprocess")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", forbidden)
    monkeypatch.setattr("subprocess.Popen.__init__", forbidden)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before


def config(size: int = 2, packages: tuple[str, ...] = (), concurrency: int = 2) -> Config:
    return parse_config(
        # No pre-started kernels: those start real processes (tests/kernels covers them).
        {"backends": {"toy": {"pool_size": size, "packages": list(packages), "concurrency": concurrency, "kernels": 0}}}
    )


class Harness:
    def __init__(self, tmp: Path, cfg: Config) -> None:
        self.paths = Paths(cache_dir=tmp / "cache", socket=tmp / "s.sock", config_file=tmp / "config.toml")
        self.workers: dict[str, FakeWorker] = {}

        def factory(name: str, on_ready: Callable[[Any], Awaitable[None]], supervision: SupervisionConfig) -> Worker:
            worker = FakeWorker(name, on_ready, supervision)
            self.workers[name] = worker
            return worker

        plugins = {"toy": PluginInfo(name="toy", value="toy", distribution="toy", version="1")}
        self.sup = Supervisor(wire(self.paths, cfg), plugins, factory)

    @property
    def worker(self) -> FakeWorker:
        return self.workers["toy"]

    @property
    def pool(self) -> Any:
        return self.sup.runtimes["toy"].pool

    def on_disk(self) -> set[str]:
        return {e.id for e in scan_envs(self.paths.envs)}

    async def take(self, **kwargs: Any) -> EnvReply | Empty | Error:
        return await self.sup.take(Take(env_type="toy", **kwargs), peer_pid=None)


async def until(predicate: Callable[[], object], what: str, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def run(test: Callable[[Harness], Coroutine[Any, Any, None]], tmp: Path, cfg: Config) -> None:
    async def main() -> None:
        h = Harness(tmp, cfg)
        await h.sup.start()
        try:
            await test(h)
        finally:
            await h.sup.shutdown()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_fills_to_target_and_take_leases_each_env_once(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await until(lambda: len(h.pool.available) == 3, "a full pool")
        assert len(h.worker.creates()) == 3 and h.on_disk() == {e.id for e in h.pool.available}
        reply = await h.take()
        assert isinstance(reply, EnvReply)
        path = Path(reply.env.venv_path)
        assert read_lease(path) is not None and path in h.sup.leases
        await until(lambda: len(h.pool.available) == 3, "the taken env replaced")
        ids = [reply.env.id]
        for _ in range(3):
            r = await h.take()
            assert isinstance(r, EnvReply)
            ids.append(r.env.id)
        assert len(set(ids)) == 4, "an env was handed out twice"

    run(test, tmp_path, config(size=3, concurrency=3))


def test_fill_respects_concurrency_and_never_overbuilds(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.worker.hold = True
        await until(lambda: len(h.worker.held) == 2, "two builds in flight")
        await asyncio.sleep(0.05)
        assert len(h.worker.creates()) == 2 and len(h.pool.warming) == 2  # concurrency 2 of target 4
        h.worker.release_held()
        await until(lambda: len(h.worker.held) == 2, "the next two builds")
        h.worker.hold = False
        h.worker.release_held()
        await until(lambda: len(h.pool.available) == 4, "a full pool")
        await asyncio.sleep(0.05)
        assert len(h.worker.creates()) == 4

    run(test, tmp_path, config(size=4, concurrency=2))


def test_build_failure_is_classified_backs_off_and_leaves_nothing(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.worker.hold = True
        await until(lambda: h.worker.held, "a build")
        h.pool.backoff = Backoff(base=0.2, factor=2, cap=1)
        h.worker.fail_next = [BackendError(ErrorKind.INVALID_PACKAGE, "no such package: nope", package="nope")]
        h.worker.hold = False
        h.worker.release_held()
        await until(lambda: h.pool.failures == 1, "the failure recorded")
        error = h.sup.status().pools["toy"].error
        assert error is not None and (error.kind, error.package) == ("invalid_package", "nope")
        assert error.retry_in_s is not None and 0 < error.retry_in_s <= 0.2
        assert h.on_disk() == set() and not h.pool.warming  # the partial env is gone
        reply = await h.take()
        assert isinstance(reply, Empty) and reply.retry_in_s is not None
        creates = len(h.worker.creates())
        await asyncio.sleep(0.05)
        assert len(h.worker.creates()) == creates, "built again during the backoff"
        await until(lambda: len(h.pool.available) == 1, "a build after the backoff")
        assert h.sup.status().pools["toy"].error is None

    run(test, tmp_path, config(size=1))


def test_worker_crash_mid_build_fails_the_build_without_backoff_and_builds_resume(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.worker.hold = True
        await until(lambda: h.worker.held, "a build in flight")
        h.worker.crash()
        await until(lambda: not h.pool.warming, "the build given up")
        status = h.sup.status().pools["toy"]
        assert status.error is not None and status.error.kind == "crashed"
        assert h.pool.retry_at is None  # the worker's own restart backoff throttles, not the pool's
        assert h.on_disk() == set()
        h.worker.hold = False
        await h.worker.come_up()
        await until(lambda: len(h.pool.available) == 1, "the pool refilled after the restart")

    run(test, tmp_path, config(size=1))


def test_resize_deletes_surplus_and_builds_more(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await until(lambda: len(h.pool.available) == 3, "a full pool")
        h.sup.apply_config(config(size=1))
        assert len(h.pool.available) == 1
        await until(lambda: len(h.on_disk()) == 1, "surplus deleted from disk")
        h.sup.apply_config(config(size=2))
        await until(lambda: len(h.pool.available) == 2, "grown")

    run(test, tmp_path, config(size=3, concurrency=3))


def test_spec_change_serves_outdated_envs_as_fallbacks_until_replaced(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await until(lambda: len(h.pool.available) == 2, "a full pool")
        old = {e.id for e in h.pool.available}
        h.worker.hold = True
        h.sup.apply_config(config(size=2, packages=("numpy",)))
        await until(lambda: len(h.pool.outdated) == 2 and h.worker.held, "old envs outdated, new builds started")
        fallback = await h.take()  # nothing current is ready yet: an outdated env serves
        assert isinstance(fallback, EnvReply) and fallback.env.id in old
        h.worker.hold = False
        h.worker.release_held()
        await until(lambda: len(h.pool.available) == 2 and not h.pool.outdated, "all replaced")
        await until(lambda: not (old & h.on_disk()) - {fallback.env.id}, "replaced envs deleted")
        assert all(e.manifest.spec_hash == spec_hash_of(["numpy"]) for e in h.pool.available)

    run(test, tmp_path, config(size=2))


def _env_on_disk(h: Harness, env_id: str, spec: str, *, manifest: bool = True) -> Path:
    path = h.paths.env_path("toy", env_id)
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").write_text("")
    if manifest:
        write_manifest(path, Manifest(env_type="toy", id=env_id, spec_hash=spec, python_path=str(path / "bin/python")))
    return path


def test_adoption_at_startup(tmp_path: Path) -> None:
    h = Harness(tmp_path, config(size=2))
    good = _env_on_disk(h, "0001", spec_hash_of([]))
    _env_on_disk(h, "0002", spec_hash_of([]))  # fails validation below
    partial = _env_on_disk(h, "0003", spec_hash_of([]), manifest=False)
    leased = _env_on_disk(h, "0004", spec_hash_of([]))
    write_lease(leased, make_lease(None))
    outdated = _env_on_disk(h, "0005", "old-spec")

    async def main() -> None:
        h.sup.worker_factory = _with_invalid(h.sup.worker_factory, {"0002"})
        await h.sup.start()
        try:
            h.worker.hold = True
            await until(lambda: h.worker.held, "a build for the slot of the invalid env")
            assert [e.id for e in h.pool.available] == ["0001"]
            assert [e.id for e in h.pool.outdated] == ["0005"]  # a fallback until replaced
            assert leased in h.sup.leases
            await until(lambda: not partial.exists() and not h.paths.env_path("toy", "0002").exists(), "deletions")
            assert good.exists() and outdated.exists()
            h.worker.hold = False
            h.worker.release_held()
            await until(lambda: len(h.pool.available) == 2 and not h.pool.outdated, "pool full, fallback replaced")
            await until(lambda: not outdated.exists(), "the replaced fallback deleted")
            assert len(h.worker.creates()) == 1
        finally:
            await h.sup.shutdown()

    asyncio.run(asyncio.wait_for(main(), 30))


def _with_invalid(factory: Any, invalid: set[str], *, auto_up: bool = True) -> Any:
    def make(*args: Any) -> Worker:
        worker = factory(*args)
        worker.invalid = invalid
        worker.auto_up = auto_up
        return worker  # type: ignore[no-any-return]

    return make


def test_gc_before_the_worker_is_up_leaves_envs_awaiting_adoption(tmp_path: Path) -> None:
    h = Harness(tmp_path, config(size=1))
    env = _env_on_disk(h, "0001", spec_hash_of([]))

    async def main() -> None:
        h.sup.worker_factory = _with_invalid(h.sup.worker_factory, set(), auto_up=False)
        await h.sup.start()
        try:
            report = await h.sup.gc()
            assert report.removed == [] and env.exists()
            await h.worker.come_up()
            await until(lambda: [e.id for e in h.pool.available] == ["0001"], "the env adopted")
            assert h.worker.creates() == []
        finally:
            await h.sup.shutdown()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_take_skips_a_broken_env_and_a_gone_client_gets_nothing(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await until(lambda: len(h.pool.available) == 2, "a full pool")
        broken = h.pool.available[0]
        (broken.path / "bin" / "python").unlink()  # a cache cleaner struck
        reply = await h.take()
        assert isinstance(reply, EnvReply) and reply.env.id != broken.id
        await until(lambda: not broken.path.exists(), "the broken env deleted")
        before = len(h.pool.available)
        gone = await h.sup.take(Take(env_type="toy"), peer_pid=None, client_gone=lambda: True)
        assert isinstance(gone, Empty) and len(h.pool.available) == before

    run(test, tmp_path, config(size=2))


def test_a_lease_that_cannot_be_written_loses_no_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def test(h: Harness) -> None:
        await until(lambda: len(h.pool.available) == 1, "a full pool")
        env = h.pool.available[0]
        bad = await h.take(lease_pid=-1)
        assert isinstance(bad, Error) and h.pool.available == [env]

        def read_only(*_args: Any, **_kwargs: Any) -> None:
            raise OSError(30, "Read-only file system")

        monkeypatch.setattr("runtimed.daemon.session.write_lease", read_only)
        failed = await h.take()
        assert isinstance(failed, Error) and failed.code == "lease_failed"
        assert h.pool.available == [env] and env.path not in h.sup.leases

    run(test, tmp_path, config(size=1))


def test_only_the_holder_may_release_while_it_lives(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await until(lambda: len(h.pool.available) == 2, "a full pool")
        mine = await h.take(lease_pid=os.getpid())
        assert isinstance(mine, EnvReply)
        refused = await h.sup.release(mine.env.venv_path, peer_pid=os.getppid())
        assert isinstance(refused, Error) and refused.code == "not_holder"
        assert Path(mine.env.venv_path).exists()
        released = await h.sup.release(mine.env.venv_path, peer_pid=os.getpid())
        assert not isinstance(released, Error)
        await until(lambda: not Path(mine.env.venv_path).exists(), "the released env deleted")
        # A holder that has exited (its pid now belongs to another process): anyone may release.
        gone = await h.take()
        assert isinstance(gone, EnvReply)
        h.sup.leases.add(Path(gone.env.venv_path), "toy", Lease(pid=os.getpid(), create_time=1.0, taken_at=""))
        ok = await h.sup.release(gone.env.venv_path, peer_pid=os.getppid())
        assert not isinstance(ok, Error)

    run(test, tmp_path, config(size=2))


def test_a_failing_delete_does_not_wedge_the_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def test(h: Harness) -> None:
        h.worker.hold = True
        await until(lambda: h.worker.held, "a build")

        def erofs(*_args: Any) -> None:
            raise OSError(30, "Read-only file system")

        monkeypatch.setattr("runtimed.daemon.envfiles.move_to_trash", erofs)
        h.pool.backoff = Backoff(base=0.05, cap=0.05)
        h.worker.fail_next = [BackendError(ErrorKind.NETWORK, "down")]
        h.worker.hold = False
        h.worker.release_held()
        await until(lambda: h.pool.failures == 1, "the failure recorded")
        assert not h.pool.warming, "the env id stayed warming"
        status = h.sup.status().pools["toy"]
        assert status.warming == 0 and status.error is not None and status.error.kind == "network"
        monkeypatch.undo()
        await until(lambda: len(h.pool.available) == 1, "builds resumed")

    run(test, tmp_path, config(size=1))


def test_the_supervisor_receives_its_parts_built() -> None:
    """Its collaborators are wired in runtimed.daemon.wiring: its __init__ only keeps
    them (no lambda that could read an attribute before it is assigned), and
    builds are started through one name, Builder.carry_out."""
    init = ast.parse(textwrap.dedent(inspect.getsource(Supervisor.__init__)))
    assert not [node for node in ast.walk(init) if isinstance(node, ast.Lambda)]
    built = [n.func.id for n in ast.walk(init) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    assert not [name for name in built if name[0].isupper()], "it builds a part itself"
    assert not {"fill", "fill_all", "carry_out", "discard", "measure"} & set(dir(Supervisor))


def test_parts_follow_a_config_reload(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        assert h.sup.kernels.owner_grace_s() == 10.0
        h.sup.apply_config(parse_config({**RAW, "daemon": {"kernel_owner_grace_s": 42}}))
        assert h.sup.kernels.owner_grace_s() == 42.0 and h.sup.config.daemon.kernel_owner_grace_s == 42.0
        assert h.sup.parts.housekeeping.max_age_s("toy") == h.sup.config.backend("toy").max_age_s

    run(test, tmp_path, parse_config(RAW))


RAW = {"backends": {"toy": {"pool_size": 1, "kernels": 0}}}
