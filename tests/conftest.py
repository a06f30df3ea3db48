"""Shared fixtures: a warm uv cache for the session, and real daemons in temp dirs."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtimed.util.modes import repair_tree
from tests.support import conda_channel
from tests.support.daemon import DaemonProcess, wait_for_exit

# Tests must never reach the user's real daemon, config or cache.
for _var in ("RUNTIMED_CACHE_DIR", "RUNTIMED_CONFIG", "RUNTIMED_SOCKET"):
    os.environ.pop(_var, None)


#: Tests that use these start a real daemon or install packages: marked ``slow``.
SLOW_FIXTURES = frozenset(
    {
        "daemon_factory",
        "uv_cache",
        "dir_env",  # conda envs installed from the local test channel (tests/plugins/conda)
        "http_envs",
        "conda_pair",  # tests/envs/test_bytecode_conda.py
        "pixi_site",  # pip installs the example plugin
    }
)
SCENARIOS = Path(__file__).parent / "scenarios"
#: Drive the real ``runtimed`` command (and what it starts) in subprocesses: slow as a whole.
SLOW_DIRS = (SCENARIOS, Path(__file__).parent / "cli")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``pytest -m "not slow"`` is the quick loop: every test in tests/scenarios/ and
    tests/cli/ and every test that starts a daemon or installs (through the fixtures
    above) is ``slow``; others that start a kernel, a daemon or an install say so themselves."""
    for item in items:
        in_slow_dir = any(d in Path(item.path).parents for d in SLOW_DIRS)
        if in_slow_dir or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _isolated_runtimed(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every test's default runtimed paths at a temp dir, with auto-start off
    (a test that finds no daemon must not leave one behind; tests of auto-start turn
    it on and stop what they started)."""
    base = tmp_path_factory.mktemp("runtimed-home")
    monkeypatch.setenv("RUNTIMED_CACHE_DIR", str(base / "cache"))
    monkeypatch.setenv("RUNTIMED_CONFIG", str(base / "config.toml"))
    monkeypatch.setenv("RUNTIMED_AUTO_START", "0")
    # Kernels keep IPython's history (a sqlite file) and profile here, not in ~/.ipython.
    monkeypatch.setenv("IPYTHONDIR", str(base / "ipython"))


@pytest.fixture(scope="session")
def uv_cache() -> Path:
    """A uv cache shared by the whole session (and kept between runs), warmed once.

    Envs then build with ``uv pip install --offline`` in about a second.
    """
    from runtimed_uv.backend import find_uv

    cache = conda_channel.test_cache_root() / "uv-cache"
    # Checkouts share it: a test run of an earlier runtimed may have left directories
    # that their owner cannot enter (its workers' umask 0177), fatal without root's bypass.
    repair_tree(cache)
    uv = find_uv()
    assert uv, "uv is a test dependency"
    env = {**os.environ, "UV_CACHE_DIR": str(cache)}
    # A scratch venv of this session's own: test runs in several checkouts share the cache.
    with tempfile.TemporaryDirectory(prefix="uv-warm-", dir=conda_channel.test_cache_root()) as scratch:
        subprocess.run([uv, "venv", "--quiet", scratch], env=env, check=True)
        python = str(Path(scratch) / "bin" / "python")
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", python, "ipykernel", "ipywidgets"], env=env, check=True
        )
    return cache


@pytest.fixture
def daemon_factory(tmp_path: Path, uv_cache: Path) -> Iterator[type[DaemonProcess]]:
    """Build ``DaemonProcess`` objects (started by the test); all are stopped at the end
    and must leave no process behind."""
    started: list[DaemonProcess] = []
    counter = iter(range(1000))

    class Factory(DaemonProcess):
        def __init__(self, base: Path | None = None, **kwargs: object) -> None:
            env = dict(kwargs.pop("env", None) or {})  # type: ignore[call-overload]
            env.setdefault("UV_CACHE_DIR", str(uv_cache))
            base = base or tmp_path / f"d{next(counter)}"
            base.mkdir(parents=True, exist_ok=True)
            super().__init__(base, env=env, **kwargs)  # type: ignore[arg-type]
            started.append(self)

    yield Factory
    leftovers = []
    for daemon in started:
        daemon.stop()
        leftovers += daemon.leftover_processes()
    # A killed supervisor's workers exit when their stdin closes, once out of their
    # start-up: give them that long, no more.
    leftovers = wait_for_exit(leftovers, timeout=10)
    for proc in leftovers:
        proc.kill()
    assert not leftovers, f"processes left behind: {leftovers}"


JUV = "juv==0.5.0"


@pytest.fixture
def juv(uv_cache: Path, tmp_path: Path) -> object:
    """Run juv (from PyPI, through uv) in ``tmp_path``: ``juv("add", nb, "six")``."""
    from runtimed_uv.backend import find_uv

    uv = find_uv()
    env = {**os.environ, "UV_CACHE_DIR": str(uv_cache), "UV_TOOL_DIR": str(tmp_path / "tools")}

    def run(*args: str) -> None:
        subprocess.run(
            [str(uv), "tool", "run", "--from", JUV, "juv", *args],
            env=env,
            cwd=tmp_path,
            check=True,
            capture_output=True,
            timeout=300,
        )

    return run
