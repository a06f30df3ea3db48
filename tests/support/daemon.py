"""Run a real ``runtimed run`` subprocess in a temp dir, and clean up after it.

Every daemon a test starts gets its own cache dir, config file and socket, and the
shared warm uv cache of the test session (so envs build offline in ~1 s). At the
end the whole process tree is killed and checked to be gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil
import tomlkit

from runtimed.client import Client, DaemonNotRunning
from runtimed.config import tomllib
from runtimed.envs.plugins import discover_plugins
from runtimed.protocol.messages import StatusReply

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], T], timeout: float = 60.0, interval: float = 0.1, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (DaemonNotRunning, ConnectionError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def wait_for_exit(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until each has exited (a zombie counts: only its parent can reap it); returns
    those still running after ``timeout``."""
    deadline = time.monotonic() + timeout

    def running(p: psutil.Process) -> bool:
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    alive = [p for p in procs if running(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if running(p)]
    return alive


def raw_connect(path: Path, timeout: float = 20.0) -> socket.socket:
    """A bare Unix-socket connection, for tests that speak bytes, not the client."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(path))
    return s


def runtimed_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "runtimed.cli", *args]


def runtimed_script(*args: str) -> list[str]:
    """The ``runtimed`` console script, as a user runs it (its directory, not the cwd,
    is first on ``sys.path``)."""
    return [str(Path(sys.executable).parent / "runtimed"), *args]


class DaemonProcess:
    """A ``runtimed run`` subprocess with its own cache dir."""

    def __init__(
        self,
        base: Path,
        *,
        config: str = "",
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.base = base
        self.cache_dir = base / "cache"
        self.config_file = base / "config.toml"
        self.write_config(config)
        self.env = {
            **os.environ,
            "RUNTIMED_CACHE_DIR": str(self.cache_dir),
            "RUNTIMED_CONFIG": str(self.config_file),
            **(env or {}),
        }
        self.env.pop("RUNTIMED_SOCKET", None)
        self.args = args
        self.command = runtimed_cmd("run", *args)  # a test may run it another way (the console script)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = base / "daemon.out"
        self._seen_pids: set[int] = set()

    def write_config(self, text: str) -> None:
        """Write the config file; installed backends it does not mention get
        ``pool_size = 0`` so a test only builds what it asks for (and conda never
        reaches for conda-forge). Pre-started kernels are off (``kernels = 0``)
        unless the test sets ``kernels``: they take envs from the pool."""
        data = tomllib.loads(text)
        backends = data.setdefault("backends", {})
        for name in discover_plugins():
            backends.setdefault(name, {"pool_size": 0})
        for section in backends.values():
            section.setdefault("kernels", 0)
        self.config_file.write_text(tomlkit.dumps(data))

    @property
    def socket(self) -> Path:
        from runtimed.util.paths import Paths

        return Paths.resolve(cache_dir=self.cache_dir, config_file=self.config_file).socket

    def start(self, wait: bool = True) -> DaemonProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.base)
        log.close()
        if wait:
            wait_for(self._ready, timeout=30, what="daemon to listen")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.output()}")
        if not (self.cache_dir / "daemon.json").exists():
            return False
        with Client(self.socket) as c:
            c.ping()
        return True

    def client(self) -> Client:
        return Client(self.socket)

    def status(self) -> StatusReply:
        with self.client() as c:
            reply = c.status()
        self._remember_pids(reply)
        return reply

    def _remember_pids(self, reply: StatusReply) -> None:
        for pool in reply.pools.values():
            if pool.worker and pool.worker.pid:
                self._seen_pids.add(pool.worker.pid)

    def wait_pool(self, backend: str, available: int, timeout: float = 120.0) -> StatusReply:
        def check() -> StatusReply | None:
            status = self.status()
            pool = status.pools.get(backend)
            return status if pool and pool.available >= available else None

        return wait_for(check, timeout=timeout, what=f"{backend} pool to reach {available} available")

    def run_cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            runtimed_cmd(*args), env=self.env, capture_output=True, text=True, timeout=timeout, cwd=self.base
        )

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except OSError:
            return ""

    def daemon_json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.cache_dir / "daemon.json").read_text())
        return data

    def process_tree(self) -> list[psutil.Process]:
        if self.proc is None:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait; SIGKILL the tree if it does not go. Returns the exit code."""
        if self.proc is None:
            return None
        tree = self.process_tree()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                for p in tree:
                    with contextlib.suppress(psutil.Error):
                        p.kill()
                self.proc.wait(5)
        for p in tree:
            with contextlib.suppress(psutil.Error):
                p.wait(5)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the supervisor alone (its workers notice their stdin closing)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def leftover_processes(self) -> list[psutil.Process]:
        """Processes started from this daemon's cache dir that are still alive."""
        marker = str(self.cache_dir)
        alive = []
        for p in psutil.process_iter(["cmdline", "environ"]):
            with contextlib.suppress(psutil.Error):
                cmd = " ".join(p.info["cmdline"] or [])
                env = p.info["environ"] or {}
                ours = marker in cmd or env.get("RUNTIMED_CACHE_DIR") == marker or p.pid in self._seen_pids
                if ours and p.pid != os.getpid():
                    alive.append(p)
        return alive


@contextlib.contextmanager
def running_daemon(base: Path, **kwargs: Any) -> Iterator[DaemonProcess]:
    daemon = DaemonProcess(base, **kwargs).start()
    try:
        yield daemon
    finally:
        daemon.stop()
