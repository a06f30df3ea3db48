"""Start the daemon in the background when a client finds none ("auto-start").

The kernel provisioner, ``python -m runtimed.kernel`` and ``runtimed take`` call
:func:`auto_start` when connecting failed with
:class:`~runtimed.client.DaemonAbsent` (no socket, or a stale one). It never
replaces a daemon that is there but does not answer or is not ours, and it
starts the daemon exactly as the user would:

* with the client's resolved cache dir, socket and config passed explicitly
  (``--cache-dir``, ``--socket``, ``--config``), so it can never run on another
  cache dir than the one configured;
* with this interpreter (``sys.executable -P -m runtimed.cli run``, see
  :mod:`runtimed.util.selfcmd`), so the daemon is this runtimed version, whatever the
  directory it runs in holds;
* detached: in its own session, stdin/stdout/stderr on ``/dev/null``, logging
  only to ``CACHE_DIR/runtimed.log`` (``--no-log-stderr``), and reparented to
  init at once (started through a short-lived intermediate process), so no
  client is left with a zombie or a child it must wait for.

Races are settled by the daemon's singleton lock: of two daemons started at once
the loser prints "already running" and exits 0.

Whether to auto-start (:func:`auto_start_setting`): ``RUNTIMED_AUTO_START=0``
turns it off; an invalid config file turns it off (a daemon could not start with
it anyway); ``RUNTIMED_AUTO_START=1`` turns it on; otherwise ``[daemon]
auto_start`` in the config file decides (default true).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from attrs import define

from runtimed.util.liveness import running
from runtimed.util.output import tail
from runtimed.util.paths import Paths
from runtimed.util.selfcmd import module_command

__all__ = [
    "AUTO_START_ENV",
    "AutoStart",
    "AutoStartSetting",
    "auto_start",
    "auto_start_setting",
    "daemon_command",
    "parse_switch",
    "resolve_target",
    "started_the_daemon",
    "wait_until_answering",
]

AUTO_START_ENV = "RUNTIMED_AUTO_START"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

# The intermediate process: starts the daemon in a new session and exits at once,
# so the daemon is reparented to init (no zombie in the client), and prints its pid.
_LAUNCHER = (
    "import subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,"
    " stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)\n"
    "print(p.pid)\n"
)


@define(frozen=True)
class AutoStartSetting:
    """Whether auto-start is on, and what decided it (for logs and ``doctor``)."""

    enabled: bool
    source: str


@define(frozen=True)
class AutoStart:
    """The outcome of :func:`auto_start`: a daemon was started (``pid``), or why not."""

    started: bool
    reason: str
    pid: int | None = None
    paths: Paths | None = None
    holder: int | None = None  # not started: a daemon holds the lock and is not listening yet


def parse_switch(value: str) -> bool | None:
    """``1/true/yes/on`` -> True, ``0/false/no/off`` -> False (any case), else None."""
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    return None


def auto_start_setting(config_file: Path, environ: Mapping[str, str] | None = None) -> AutoStartSetting:
    """Is auto-start on? ``RUNTIMED_AUTO_START=0`` (or an unreadable value) says no
    first; a broken config file says no (fail safe: ``runtimed run`` would exit 2 with
    it); ``RUNTIMED_AUTO_START=1`` says yes; else ``[daemon] auto_start`` (default on)."""
    from runtimed.config import ConfigError, load_config

    environ = os.environ if environ is None else environ
    raw = environ.get(AUTO_START_ENV, "").strip()
    switch = parse_switch(raw) if raw else None
    if raw and switch is None:
        return AutoStartSetting(False, f"{AUTO_START_ENV}={raw!r} is not one of 1/0, true/false, yes/no, on/off")
    if switch is False:
        return AutoStartSetting(False, f"{AUTO_START_ENV}={raw}")
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        return AutoStartSetting(False, f"the config is invalid, so a daemon could not start: {exc}")
    if switch:
        return AutoStartSetting(True, f"{AUTO_START_ENV}={raw}")
    if not config_file.exists():
        return AutoStartSetting(config.daemon.auto_start, "the default (no config file)")
    value = "true" if config.daemon.auto_start else "false"
    return AutoStartSetting(config.daemon.auto_start, f"[daemon] auto_start = {value} in {config_file}")


def resolve_target(
    cache_dir: str | os.PathLike[str] | None = None,
    socket: str | os.PathLike[str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> Paths | str:
    """The paths a daemon started for this client gets, or why none may be started.

    Arguments are what the client was explicitly given; the rest comes from the
    ``RUNTIMED_*`` variables and the defaults, as for ``runtimed run``. A socket pinned
    without its cache dir (a kernelspec written by ``runtimed kernel install --socket``)
    that is not the one the resolved cache dir would use belongs to a daemon whose cache
    dir is unknown: starting one on a guessed cache dir could make two daemons fight over
    that socket, so that case is refused.
    """
    paths = Paths.resolve(cache_dir=cache_dir, socket=socket, config_file=config_file)
    if socket and not cache_dir:
        usual = Paths.resolve(config_file=config_file).socket
        if paths.socket != usual:
            return (
                f"the socket {paths.socket} is set without its cache dir (the usual socket is {usual}), "
                "so the daemon's cache dir is unknown; reinstall the kernelspec with --cache-dir, "
                "or start the daemon yourself"
            )
    return paths


def daemon_command(paths: Paths, python: str | None = None) -> list[str]:
    """``runtimed run`` for ``paths``, with this interpreter, logging only to its file
    (started so that its cwd, the home directory, cannot shadow runtimed)."""
    return module_command(
        "runtimed.cli",
        "run",
        "--no-log-stderr",
        "--cache-dir",
        os.fspath(paths.cache_dir),
        "--socket",
        os.fspath(paths.socket),
        "--config",
        os.fspath(paths.config_file),
        python=python,
    )


def _working_dir() -> str:
    # Like a systemd user unit: the home directory (never the notebook's directory,
    # which the daemon would otherwise keep busy), or / without one.
    home = os.path.expanduser("~")
    return home if os.path.isdir(home) else "/"


def _spawn(command: list[str]) -> int:
    """Run ``command`` detached (see the module docstring); its pid."""
    launcher = subprocess.run(
        [command[0], "-I", "-S", "-c", _LAUNCHER, *command],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=_working_dir(),
        timeout=60,
        check=False,
    )
    if launcher.returncode != 0:
        detail = tail(launcher.stderr, 1) or f"exit {launcher.returncode}"
        raise OSError(f"could not launch {command[0]}: {detail}")
    return int(launcher.stdout.strip())


def auto_start(
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    socket: str | os.PathLike[str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> AutoStart:
    """Start a daemon in the background if the settings allow it (call only after
    :class:`~runtimed.client.DaemonAbsent`). Returns at once, without waiting for the
    daemon to listen (see :func:`wait_until_answering`). Never raises for an expected
    failure: the outcome says what happened."""
    from runtimed.util.singleton import find_daemon

    target = resolve_target(cache_dir, socket, config_file)
    if isinstance(target, str):
        return AutoStart(False, target)
    setting = auto_start_setting(target.config_file, environ)
    if not setting.enabled:
        return AutoStart(False, f"auto-start is off ({setting.source})", paths=target)
    if not sys.executable:
        return AutoStart(False, "this Python does not know its own interpreter (sys.executable)", paths=target)
    holder = find_daemon(target)
    if holder is not None:
        # It holds the lock but does not listen (yet): starting, stuck, or stopping.
        return AutoStart(
            False,
            f"runtimed pid {holder.pid} holds {target.lock} but does not listen on {target.socket}",
            paths=target,
            holder=holder.pid,
        )
    try:
        pid = _spawn(daemon_command(target))
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        return AutoStart(False, f"could not start the daemon: {exc}", paths=target)
    return AutoStart(True, f"no daemon at {target.socket}; auto-start is on ({setting.source})", pid, target)


def wait_until_answering(paths: Paths, timeout: float, pid: int | None = None) -> str | None:
    """Wait up to ``timeout`` s for a daemon to answer a ping on ``paths.socket``.

    None once one answers (ours, or the winner of a start race), else why not.
    Gives up early when ``pid`` (the daemon just started) has exited and no daemon
    holds the lock: it failed to start (its reason is in the log).
    """
    from runtimed.client import Client, DaemonAbsent, DaemonNotRunning
    from runtimed.util.diskspace import low_space_note
    from runtimed.util.singleton import find_daemon

    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        try:
            with Client(paths.socket, timeout=1.0) as client:
                client.ping()
            return None
        except DaemonAbsent as exc:
            last = str(exc)
            if pid is not None and running(pid) is None and find_daemon(paths) is None:
                note = low_space_note(paths.cache_dir)  # then the log may be empty too
                why = f" ({note})" if note else ""
                return f"the daemon (pid {pid}) exited without starting{why}; see `runtimed logs` ({paths.log})"
        except DaemonNotRunning as exc:
            last = str(exc)
        if time.monotonic() >= deadline:
            return f"no daemon answered within {timeout:.1f}s ({last})"
        time.sleep(0.05)


def started_the_daemon(outcome: AutoStart) -> bool:
    """Is the daemon that runs now (call after :func:`wait_until_answering`) the one
    ``outcome`` started? Of clients that auto-start at once, all spawn a daemon but
    only one wins the singleton lock; the others exit at once ("already running")."""
    from runtimed.util.singleton import find_daemon

    if not outcome.started or outcome.paths is None or outcome.pid is None:
        return False
    holder = find_daemon(outcome.paths)
    return holder is not None and holder.pid == outcome.pid
