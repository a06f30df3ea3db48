"""Doctor checks of the config, the daemon, the cache dir and stray processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

import psutil

from runtimed.client import Client, DaemonError, DaemonNotRunning
from runtimed.config import ConfigError, load_config
from runtimed.doctor.results import CheckResult, CheckStatus, DoctorContext
from runtimed.protocol.messages import PROTOCOL_VERSION
from runtimed.protocol.version import RESTART_HINT, mismatch
from runtimed.util.liveness import running
from runtimed.util.paths import Paths, private_dir_problem, socket_dir_problem
from runtimed.util.proctree import is_worker_of
from runtimed.util.singleton import find_daemon, not_a_regular_file, read_daemon_state

__all__ = [
    "check_cache_dir_permissions",
    "check_cache_dir_writable",
    "check_config",
    "check_daemon",
    "check_daemon_files",
    "check_free_disk",
    "check_socket",
    "check_stale_processes",
    "load_config_checked",
]

PASS, WARN, FAIL = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL
DISK_WARN_BYTES = 2 * 1024**3
DISK_FAIL_BYTES = 256 * 1024**2
PING_TIMEOUT_S = 3.0


def load_config_checked(paths: Paths) -> tuple[CheckResult, DoctorContext]:
    """The config check, and the context the other checks use."""
    try:
        config = load_config(paths.config_file)
    except ConfigError as exc:
        result = CheckResult(
            "config", FAIL, str(exc), f"fix {paths.config_file} (`runtimed config show` lists every key)"
        )
        return result, DoctorContext(paths, None)
    where = str(paths.config_file) if paths.config_file.exists() else f"no file at {paths.config_file}: defaults"
    return CheckResult("config", PASS, f"config valid ({where})"), DoctorContext(paths, config)


def check_config(ctx: DoctorContext) -> list[CheckResult]:
    return [load_config_checked(ctx.paths)[0]]


def check_daemon(ctx: DoctorContext) -> list[CheckResult]:
    sock = ctx.paths.socket
    try:
        with Client(sock, timeout=PING_TIMEOUT_S) as client:
            pong = client.ping()
    except DaemonNotRunning:
        return [
            CheckResult(
                "daemon",
                WARN,
                f"no daemon answers on {sock}",
                "start one: `runtimed run` (or `runtimed service install` to keep one running)",
            )
        ]
    except DaemonError as exc:
        return [CheckResult("daemon", FAIL, f"the daemon on {sock} does not understand ping: {exc}", RESTART_HINT)]
    problem = mismatch(pong.daemon_version, pong.protocol_version)
    if problem is None:
        return [CheckResult("daemon", PASS, f"daemon answers on {sock} (runtimed {pong.daemon_version})")]
    status = FAIL if pong.protocol_version != PROTOCOL_VERSION else WARN
    return [CheckResult("daemon", status, problem, RESTART_HINT)]


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def _dir_fix(path: Path, problem: str) -> str:
    """The one-line fix for a directory ``runtimed run`` refuses."""
    if "not a directory" in problem:
        return f"move {path} away, or use another --cache-dir / --socket"
    if "belongs to uid" in problem or "symlink owned by" in problem:
        return (
            f"use a directory of your own (--cache-dir / RUNTIMED_CACHE_DIR, --socket), or chown {os.getuid()} {path}"
        )
    return f"chmod 700 {path}"


def _socket_dir(paths: Paths) -> list[CheckResult]:
    """The socket's directory, judged as ``runtimed run`` judges it (and changing nothing)."""
    parent = paths.socket.parent
    try:
        problem = private_dir_problem(parent) if paths.socket_dir_is_private else socket_dir_problem(parent)
    except FileNotFoundError:
        return []  # created by the daemon
    except OSError as exc:
        return [CheckResult("socket-dir", FAIL, f"cannot use {parent}: {exc.strerror or exc}", _dir_fix(parent, ""))]
    if problem:
        return [CheckResult("socket-dir", FAIL, problem, _dir_fix(parent, problem))]
    if paths.socket_dir_is_private and parent.stat().st_mode & 0o077:
        summary = f"{parent} has mode {_mode(parent)}: others can reach the socket's directory"
        return [CheckResult("socket-dir", WARN, summary, f"chmod 700 {parent}")]
    return []


def _socket_file(sock: Path) -> list[CheckResult]:
    try:
        st = os.lstat(sock)
    except OSError:
        return []  # no socket (no daemon running), or a directory problem said above
    if not stat.S_ISSOCK(st.st_mode):
        return [CheckResult("socket", FAIL, f"{sock} is not a socket", f"move it away: `mv {sock} {sock}.bak`")]
    if st.st_uid != os.getuid():
        return [
            CheckResult(
                "socket",
                FAIL,
                f"{sock} belongs to uid {st.st_uid}, not you ({os.getuid()})",
                "stop that daemon, or use your own: --cache-dir / RUNTIMED_CACHE_DIR",
            )
        ]
    if st.st_mode & 0o077:
        summary = f"{sock} has mode {oct(stat.S_IMODE(st.st_mode))}"
        return [CheckResult("socket", WARN, summary, f"chmod 600 {sock} (the daemon creates it 0600)")]
    return []


def check_socket(ctx: DoctorContext) -> list[CheckResult]:
    sock = ctx.paths.socket
    results = _socket_dir(ctx.paths) + _socket_file(sock)
    if results:
        return results
    if not os.path.lexists(sock):
        return [CheckResult("socket", PASS, f"no socket at {sock} (no daemon running); its directory is usable")]
    return [CheckResult("socket", PASS, f"{sock} is 0600 in a private directory, owned by you")]


def check_daemon_files(ctx: DoctorContext) -> list[CheckResult]:
    """daemon.lock and daemon.json: a daemon cannot start if either is not a regular file."""
    results = []
    for path in (ctx.paths.lock, ctx.paths.state):
        try:
            problem = not_a_regular_file(path)
        except OSError:
            continue  # the cache dir itself is the problem (its own check says so)
        if problem:
            results.append(CheckResult("daemon-files", FAIL, problem, f"rm -r {path}"))
    return results or [CheckResult("daemon-files", PASS, "daemon.lock and daemon.json are usable")]


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_cache_dir_permissions(ctx: DoctorContext) -> list[CheckResult]:
    cache = ctx.paths.cache_dir
    try:
        problem = private_dir_problem(cache)
    except FileNotFoundError:
        return [CheckResult("cache-dir-owner", PASS, f"{cache} does not exist yet (created on first start)")]
    except OSError as exc:
        return [CheckResult("cache-dir-owner", FAIL, f"cannot use {cache}: {exc.strerror or exc}", _dir_fix(cache, ""))]
    if problem:
        return [CheckResult("cache-dir-owner", FAIL, problem, _dir_fix(cache, problem))]
    if cache.stat().st_mode & 0o077:
        summary = f"{cache} has mode {_mode(cache)}: others can look into your envs and lease files"
        return [CheckResult("cache-dir-owner", WARN, summary, f"chmod 700 {cache}")]
    return [CheckResult("cache-dir-owner", PASS, f"{cache} is yours and private ({_mode(cache)})")]


def check_cache_dir_writable(ctx: DoctorContext) -> list[CheckResult]:
    cache = ctx.paths.cache_dir
    target = cache if cache.exists() else _nearest_existing(cache)
    fix = f"make {target} writable (read-only mount? full disk?) or use another --cache-dir / RUNTIMED_CACHE_DIR"
    if not target.is_dir():
        return [CheckResult("cache-dir-writable", FAIL, f"{target} is not a directory", fix)]
    try:
        # A real write: os.access says yes to root on a read-only mount's files' modes.
        fd, name = tempfile.mkstemp(prefix=".doctor-", dir=target)
        os.write(fd, b"ok")
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return [CheckResult("cache-dir-writable", FAIL, f"cannot write in {target}: {exc.strerror or exc}", fix)]
    what = "" if target == cache else f" (nearest existing parent of {cache})"
    return [CheckResult("cache-dir-writable", PASS, f"{target} is writable{what}")]


def _gib(n: float) -> str:
    return f"{n / 1024**3:.1f} GiB"


def check_free_disk(ctx: DoctorContext) -> list[CheckResult]:
    target = _nearest_existing(ctx.paths.cache_dir)
    free = shutil.disk_usage(target).free
    fix = f"free space on the file system of {target} (`runtimed gc`, smaller pool_size) or move the cache dir"
    if free < DISK_FAIL_BYTES:
        return [CheckResult("free-disk", FAIL, f"only {free // 1024**2} MiB free for {target}", fix)]
    if free < DISK_WARN_BYTES:
        return [CheckResult("free-disk", WARN, f"only {_gib(free)} free for {target}; each env takes 50-200 MB", fix)]
    return [CheckResult("free-disk", PASS, f"{_gib(free)} free for {target}")]


def _is_daemon(pid: int) -> bool:
    """Is ``pid`` a live ``runtimed run`` (one starting up has no daemon.json yet)?"""
    proc = running(pid)
    if proc is None:
        return False
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return False
    return "run" in cmd and any(arg.endswith("runtimed") or arg == "runtimed.cli" for arg in cmd)


def _stale_daemon(ctx: DoctorContext) -> tuple[psutil.Process | None, list[CheckResult]]:
    """The daemon proven by the lock (:func:`~runtimed.util.singleton.find_daemon`, never a pid
    alone), and what is wrong: it does not answer, or daemon.json names a pid that is not it."""
    daemon = find_daemon(ctx.paths)
    pid = (read_daemon_state(ctx.paths) or {}).get("pid")
    if daemon is not None:
        try:
            with Client(ctx.paths.socket, timeout=PING_TIMEOUT_S) as client:
                client.ping()
        except (DaemonNotRunning, DaemonError):
            summary = f"daemon pid {daemon.pid} holds the lock but does not answer on {ctx.paths.socket}"
            return daemon, [CheckResult("stale-daemon", FAIL, summary, "`runtimed stop` (escalates to SIGKILL)")]
        return daemon, []
    if not isinstance(pid, int):
        return None, []
    what = "which is gone" if running(pid) is None else "which is not a runtimed daemon (the lock is free)"
    fix = "harmless: the next `runtimed run` replaces it"
    return None, [CheckResult("stale-daemon", WARN, f"{ctx.paths.state} names pid {pid}, {what}", fix)]


def check_stale_processes(ctx: DoctorContext) -> list[CheckResult]:
    """daemon.json naming a dead or silent daemon; workers of this cache dir whose daemon is gone."""
    daemon, results = _stale_daemon(ctx)
    prefix = str(ctx.paths.cache_dir / "backends") + os.sep
    orphans = []
    for proc in psutil.process_iter(["cmdline", "ppid"]):
        with contextlib.suppress(psutil.Error):
            cmd = proc.info["cmdline"] or []
            ours = is_worker_of(cmd, prefix)
            if (
                ours
                and not (daemon is not None and proc.info["ppid"] == daemon.pid)
                and not _is_daemon(proc.info["ppid"])
            ):
                orphans.append(proc.pid)
    if orphans:
        pids = " ".join(str(p) for p in sorted(orphans))
        summary = f"worker processes of {ctx.paths.cache_dir} whose daemon is gone: {pids}"
        results.append(CheckResult("stale-workers", FAIL, summary, f"kill {pids} (a new daemon kills them too)"))
    return results or [CheckResult("stale-processes", PASS, "no stale daemon or worker processes")]
