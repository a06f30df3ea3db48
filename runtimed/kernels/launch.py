"""Starting kernel processes and talking to them: the I/O half of the kernel keeper.

Two ways to start a kernel in an env's python: the pre-started host
(:mod:`runtimed.envscripts.kernel_host`, driven over a socketpair: a ``ready`` event once it
answers ``kernel_info``, then a claim), and a plain ``ipykernel_launcher`` whose
connection file is complete once it has bound its ports. Both run in their own
session with output to ``kernel.log`` in the kernel's dir. What to start, and when,
is decided by :class:`~runtimed.kernels.keeper.KernelKeeper`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import define, field

from runtimed.kernels.owners import OwnerWatch
from runtimed.kernels.process import HOST_SCRIPT, KernelRecord, kill_group, read_connection
from runtimed.util.output import tail

__all__ = [
    "CLAIM_TIMEOUT_S",
    "START_TIMEOUT_S",
    "ClientGone",
    "KernelRequestError",
    "KernelStartError",
    "LiveKernel",
    "TakeoverError",
    "claim",
    "close_control",
    "end_process",
    "launch_ipykernel",
    "log_tail",
    "read_ready",
    "request_problem",
    "spawn_host",
    "wait_connection",
]

START_TIMEOUT_S = 120.0  # a kernel must answer kernel_info (or bind its ports) within this
CLAIM_TIMEOUT_S = 10.0


class ClientGone(Exception):
    """The client that asked for the kernel has gone: no kernel is launched for it."""


class KernelStartError(RuntimeError):
    """A kernel could not be started; the message has its log's tail."""


class TakeoverError(KernelStartError):
    """A pre-started kernel could not take over the connection asked (a port taken)."""


class KernelRequestError(ValueError):
    """A kernel request no kernel can serve (a working directory it cannot enter, a
    variable the OS cannot take)."""


def request_problem(cwd: str | None, env: Mapping[str, str]) -> str | None:
    """Why no kernel can start in ``cwd`` with ``env`` (None: one can), found before
    anything is claimed; a plain kernelspec launch fails in ``Popen`` on these."""
    for name, value in env.items():
        if not name or "=" in name or "\0" in name or "\0" in value:
            return f"environment variable {name!r} has an empty name, '=' or a NUL character"
    if not cwd:
        return None
    if "\0" in cwd:
        return f"the working directory {cwd!r} contains a NUL character"
    if not os.path.isdir(cwd):
        exists = os.path.lexists(cwd)
        return f"the working directory {cwd!r} " + ("is not a directory" if exists else "does not exist")
    if not os.access(cwd, os.X_OK):
        return f"the working directory {cwd!r} cannot be entered (permission denied)"
    return None


@define(eq=False)
class LiveKernel:
    """A kernel process the keeper tracks: its record, dir and (while idle) control channel."""

    record: KernelRecord
    dir: Path
    env_python: str = ""
    proc: subprocess.Popen[bytes] | None = None  # None for kernels of a previous daemon
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    connection: dict[str, Any] = field(factory=dict, repr=False)  # has the key: never logged
    owner: OwnerWatch = field(factory=OwnerWatch)  # once handed out


async def spawn_host(
    python: str, kernel_dir: Path, connection_file: Path | None, environ: Mapping[str, str]
) -> tuple[subprocess.Popen[bytes], asyncio.StreamReader, asyncio.StreamWriter]:
    """The kernel host in ``python``, with its end of the control channel: a kernel
    started on ``connection_file``, or (None) a pre-imported interpreter that starts
    its kernel on claim (``--preimported``)."""
    ours, theirs = socket.socketpair()
    argv = [python, str(HOST_SCRIPT), "--control-fd", str(theirs.fileno())]
    argv += ["-f", str(connection_file)] if connection_file is not None else ["--preimported"]
    try:
        proc = _popen(argv, kernel_dir, cwd=str(kernel_dir), env=environ, pass_fds=(theirs.fileno(),))
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    reader, writer = await asyncio.open_unix_connection(sock=ours)
    return proc, reader, writer


async def read_ready(reader: asyncio.StreamReader) -> dict[str, Any]:
    """The host's first event: ``{"event": "ready", "connection": ...}`` (pre-started),
    ``{"event": "imported"}`` (pre-imported) or a failure."""
    try:
        line = await asyncio.wait_for(reader.readline(), START_TIMEOUT_S)
        event: dict[str, Any] = json.loads(line) if line else {"event": "failed", "error": "the kernel host exited"}
    except asyncio.TimeoutError:
        return {"event": "failed", "error": f"no kernel_info reply within {START_TIMEOUT_S:.0f}s"}
    except ValueError as exc:
        return {"event": "failed", "error": f"bad message from the kernel host: {exc}"}
    return event


async def claim(kernel: LiveKernel, message: Mapping[str, Any]) -> None:
    """Hand a pre-started kernel its cwd, env and argv (and a connection to take
    over); closes the channel once claimed."""
    assert kernel.reader is not None and kernel.writer is not None
    kernel.writer.write((json.dumps(message) + "\n").encode())
    await kernel.writer.drain()
    line = await asyncio.wait_for(kernel.reader.readline(), CLAIM_TIMEOUT_S)
    event = json.loads(line) if line else {"event": "failed", "error": "the kernel host exited"}
    if event.get("event") != "claimed":
        error = TakeoverError if message.get("connection") else KernelStartError
        raise error(str(event.get("error", event)))
    close_control(kernel)


def launch_ipykernel(
    python: str,
    kernel_dir: Path,
    connection_file: Path,
    argv: list[str],
    *,
    cwd: str,
    environ: Mapping[str, str],
    notice: str = "",
) -> subprocess.Popen[bytes]:
    """A normal ``python -m ipykernel_launcher -f CONNECTION_FILE ARGV...``; with a
    ``notice``, shown as a pre-started kernel shows it (see :func:`notice_argv`)."""
    command = [python, "-m", "ipykernel_launcher", "-f", str(connection_file), *argv, *notice_argv(notice)]
    return _popen(command, kernel_dir, cwd=cwd, env=environ)


def notice_argv(notice: str) -> list[str]:
    """Kernel arguments that show ``notice`` (why the notebook's packages are missing)
    under the traceback of every import that fails for a missing module: an IPython
    start-up line that installs the handler the kernel host installs on claim."""
    if not notice:
        return []
    text = repr(f"\n{notice}\n")
    handler = (
        "lambda shell, etype, value, tb, tb_offset=None: (shell.showtraceback((etype, value, tb), "
        f"tb_offset=tb_offset), __import__('sys').stderr.write({text}))"
    )
    line = f"get_ipython().set_custom_exc((ModuleNotFoundError,), {handler})"
    return [f"--IPKernelApp.exec_lines={line}"]


async def wait_connection(proc: subprocess.Popen[bytes], connection_file: Path) -> dict[str, Any] | None:
    """The launched kernel's connection info once its ports are bound; None if it
    exited or took longer than :data:`START_TIMEOUT_S`."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while (info := read_connection(connection_file)) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.02)
    return info


def close_control(kernel: LiveKernel) -> None:
    """Close a pre-started kernel's channel (an unclaimed host then exits)."""
    if kernel.writer is not None:
        kernel.writer.close()
        kernel.reader = kernel.writer = None


def end_process(kernel: LiveKernel) -> None:
    """Kill a kernel we started (its whole group) and reap it."""
    if kernel.proc is not None and kernel.proc.poll() is None:
        kill_group(kernel.record.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            kernel.proc.wait(1)


def _popen(
    argv: list[str], kernel_dir: Path, *, cwd: str, env: Mapping[str, str], pass_fds: tuple[int, ...] = ()
) -> subprocess.Popen[bytes]:
    """A kernel process in its own session (it outlives the daemon once handed out)."""
    with open(kernel_dir / "kernel.log", "ab") as log_file:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            pass_fds=pass_fds,
            start_new_session=True,
        )


def log_tail(kernel_dir: Path) -> str:
    """The last lines of a kernel's log (for error messages)."""
    try:
        return tail((kernel_dir / "kernel.log").read_text(errors="replace"))
    except OSError:
        return ""
