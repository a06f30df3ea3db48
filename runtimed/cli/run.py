"""``runtimed run``: run the daemon in the foreground."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from runtimed.config import Config, ConfigError, load_config
from runtimed.util.paths import UnsafePathError, ensure_private_dir
from runtimed.util.singleton import AlreadyRunning, LockPathError, SocketPathError

from ._util import paths_from


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "run",
        parents=[common],
        help="run the daemon (foreground)",
        description="Run the runtimed daemon in the foreground until SIGTERM/SIGINT or `runtimed stop`. "
        "If a daemon already runs for this cache dir, say so and exit 0.",
    )
    p.add_argument(
        "--config", metavar="FILE", help="config file (default: $RUNTIMED_CONFIG or the platform config dir)"
    )
    p.add_argument("--uv-pool-size", type=int, metavar="N", help="target size of the uv pool (0 disables)")
    p.add_argument(
        "--pool-size",
        action="append",
        default=[],
        metavar="BACKEND=N",
        help="target size of a backend's pool, e.g. conda=1 (repeatable; 0 disables)",
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument(
        "--no-log-stderr",
        dest="log_stderr",
        action="store_false",
        help="log only to CACHE_DIR/runtimed.log, not also to stderr (used by the launchd service)",
    )
    p.set_defaults(func=main)


def _cache_dir_problem(cache_dir: Path) -> str | None:
    """Why no env can be built under ``cache_dir`` (None: they can). uv refuses a
    venv path that is not valid UTF-8, so such a daemon would run and never build."""
    try:
        os.fsencode(cache_dir).decode("utf-8")
    except UnicodeDecodeError:
        return (
            f"the cache dir {cache_dir} is not valid UTF-8, and envs cannot be built under it "
            "(uv refuses such paths): choose another with --cache-dir or RUNTIMED_CACHE_DIR"
        )
    return None


def main(args: argparse.Namespace) -> int:
    from runtimed.daemon.entry import log_traceback, run_daemon, setup_logging

    paths = paths_from(args)
    try:
        sizes = dict(_parse_size(item) for item in args.pool_size)
        if args.uv_pool_size is not None:
            sizes["uv"] = args.uv_pool_size

        def load() -> Config:
            """The file, then the command-line overrides (which survive reloads)."""
            config = load_config(paths.config_file)
            for backend, size in sizes.items():
                config = config.with_backend(backend, pool_size=size)
            return config

        config = load()  # fail now, with a clear message, not in the daemon
    except (ConfigError, ValueError) as exc:
        print(f"runtimed: {exc}", file=sys.stderr)
        return 2
    problem = _cache_dir_problem(paths.cache_dir)
    if problem is not None:
        print(f"runtimed: {problem}", file=sys.stderr)
        return 2
    try:
        # Before the log file is opened in it: never write into a dir someone else controls.
        ensure_private_dir(paths.cache_dir)
    except OSError as exc:
        print(f"runtimed: {exc}", file=sys.stderr)
        return 1
    setup_logging(
        paths,
        args.log_level,
        to_stderr=args.log_stderr,
        max_bytes=config.daemon.log_max_bytes,
        backups=config.daemon.log_backups,
    )
    try:
        run_daemon(paths, load)
    except AlreadyRunning as exc:
        state = exc.state or {}
        pid = state.get("pid", "?")
        print(f"runtimed is already running (pid {pid}, socket {state.get('endpoint', paths.socket)})")
        return 0
    except (SocketPathError, LockPathError, UnsafePathError) as exc:
        print(f"runtimed: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        # Workers are already stopped (run_daemon cleans up); one clear line, the
        # traceback in the log file.
        log_traceback(exc)
        print(f"runtimed: failed: {type(exc).__name__}: {exc} (traceback in {paths.log})", file=sys.stderr)
        return 1
    return 0


def _parse_size(item: str) -> tuple[str, int]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise ValueError(f"--pool-size wants BACKEND=N, got {item!r}")
    try:
        return name, int(value)
    except ValueError:
        raise ValueError(f"--pool-size {item!r}: N must be a whole number") from None
