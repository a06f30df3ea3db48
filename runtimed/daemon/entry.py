"""``runtimed run``: wire the lock, config, plugins, supervisor (``runtimed.daemon.wiring``) and server."""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import os
import resource
import signal
import sys
from collections.abc import Callable

from runtimed._version import __version__
from runtimed.config import Config, DaemonConfig
from runtimed.daemon.runtime import process_workers
from runtimed.daemon.server import Server
from runtimed.daemon.supervisor import Supervisor
from runtimed.daemon.usagefile import UsageFile, stats_path
from runtimed.daemon.wiring import wire
from runtimed.envs.plugins import discover_plugins
from runtimed.protocol.messages import PROTOCOL_VERSION
from runtimed.util.liveness import create_time_of
from runtimed.util.modes import repair_once
from runtimed.util.paths import Paths
from runtimed.util.singleton import DaemonLock, prepare_socket_path

__all__ = ["log_traceback", "run_daemon", "setup_logging"]

log = logging.getLogger("runtimed")


def setup_logging(
    paths: Paths,
    level: str = "INFO",
    to_stderr: bool = True,
    *,
    max_bytes: int = DaemonConfig().log_max_bytes,
    backups: int = DaemonConfig().log_backups,
) -> None:
    """A log file in the cache dir rotated at ``max_bytes`` keeping ``backups`` old
    files (``runtimed.log.1`` newest), and stderr when in the foreground."""
    fmt = logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")
    root = logging.getLogger("runtimed")
    root.setLevel(level.upper())
    root.handlers.clear()
    paths.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # private (see ensure_private_dir)
    file_handler = logging.handlers.RotatingFileHandler(paths.log, maxBytes=max_bytes, backupCount=backups)
    file_handler.setFormatter(fmt)
    root.addHandler(file_handler)
    if to_stderr:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(fmt)
        root.addHandler(stream)


def log_traceback(exc: BaseException) -> None:
    """Write ``exc`` with its traceback to the log file only (stderr gets one line)."""
    record = log.makeRecord(
        log.name, logging.ERROR, __file__, 0, "runtimed failed", (), (type(exc), exc, exc.__traceback__)
    )
    for handler in logging.getLogger("runtimed").handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


async def _serve(paths: Paths, load: Callable[[], Config], lock: DaemonLock) -> None:
    # Everything that can be checked is checked before a worker is spawned.
    prepare_socket_path(paths)
    _repair_cache_modes(paths)
    plugins = discover_plugins()
    log.info("runtimed %s starting (pid %d); backends: %s", __version__, os.getpid(), ", ".join(plugins) or "none")
    usage_file = UsageFile(stats_path(paths.cache_dir))
    usage = usage_file.load()
    parts = wire(paths, load(), usage)
    supervisor = Supervisor(parts, plugins, process_workers(paths), config_loader=load)
    stop = asyncio.Event()
    server = Server(supervisor, paths.socket, on_shutdown=lambda: _set(stop))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, supervisor.reload_config)
    # From here on workers exist: any failure must stop them, or asyncio.run would
    # wait forever for their reader threads and the daemon would hang unkillable.
    try:
        await supervisor.start()
        try:
            await server.start()
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {paths.socket}: {exc.strerror or exc}") from exc
        lock.publish(
            {
                "endpoint": str(paths.socket),
                "pid": os.getpid(),
                # With the lock, these prove to `runtimed stop` which process is the daemon.
                "create_time": create_time_of(os.getpid()),
                "cache_dir": str(paths.cache_dir),
                "version": __version__,
                "protocol_version": PROTOCOL_VERSION,
                "started_at": supervisor.started_at,
            }
        )
        log.info("listening on %s", paths.socket)
        autosave = asyncio.create_task(usage_file.autosave(usage), name="stats-autosave")
        await stop.wait()
        log.info("stopping")
        autosave.cancel()
    finally:
        await server.close()
        await supervisor.shutdown()
        usage_file.save(usage)


def _repair_cache_modes(paths: Paths) -> None:
    """Directories an earlier runtimed left unenterable (see :mod:`runtimed.util.modes`), once."""
    result = repair_once(paths.cache_dir, stamp_dir=paths.cache_dir)
    if result is not None and (result.repaired or result.errors):
        log.warning("cache dir %s", result.summary())


async def _set(event: asyncio.Event) -> None:
    event.set()


def _raise_file_limit() -> None:
    """Lift the soft open-files limit toward the hard one: every client is a descriptor."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("cannot raise the open-files limit: %s", exc)


def run_daemon(paths: Paths, load: Callable[[], Config]) -> None:
    """Run in the foreground until SIGTERM/SIGINT or a ``shutdown`` request.

    ``load`` reads the configuration (file plus command-line overrides); it is
    called again on SIGHUP and when the file changes. Takes the singleton lock
    (raising :class:`~runtimed.util.singleton.AlreadyRunning`) and releases it, with
    daemon.json and the socket, on the way out.
    """
    lock = DaemonLock(paths)
    lock.acquire()
    _raise_file_limit()
    try:
        asyncio.run(_serve(paths, load, lock))
    finally:
        lock.release()
        log.info("stopped")
