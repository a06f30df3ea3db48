"""The kernel host: runs in an ENV's python (stdlib + ipykernel only, never runtimed).

The daemon runs this file by path (``python kernel_host.py --control-fd N -f CONNECTION_FILE``)
with a socketpair end as fd N. Two modes:

* default (pre-started): the ipykernel is fully started at once; a thread checks
  that it answers ``kernel_info`` and reports ``{"event": "ready", ...}``. On the
  claim (``{"cwd", "env", "argv"}``) it applies the front end's working directory,
  environment, ``sys.path`` entry and the kernel arguments it accepts, replies
  ``{"event": "claimed"}`` and closes the channel. Nothing runs in the kernel
  before the claim, so the first execution is number 1 and history is empty.
* ``--preimported``: ipykernel is imported, and the kernel is only
  initialised on the claim, with the claim's connection file (used to measure the
  alternative; see bench/kernel_start.py).

If the channel closes before a claim (the daemon stopped or died), the host exits:
a never handed-out kernel does not outlive its daemon.
"""

from __future__ import annotations

# mypy: disable-error-code="no-untyped-call,attr-defined"
import json
import os
import sys
import threading
import time
from typing import Any

# Run by path: this file's directory must not shadow anything in the user's cwd.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

# Kernel arguments a pre-started kernel applies on claim (everything else is refused,
# and the daemon then launches a normal kernel with them).
HISTORY_FILE_ARG = "--HistoryManager.hist_file="


def _send(fd: int, message: dict[str, Any]) -> None:
    os.write(fd, (json.dumps(message) + "\n").encode())


def _read_line(fd: int) -> dict[str, Any] | None:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        data += chunk
    message: dict[str, Any] = json.loads(data)
    return message


def _apply_claim(app: object, claim: dict[str, Any]) -> None:
    cwd = claim.get("cwd")
    if cwd:
        os.chdir(cwd)
        # As `python -m ipykernel_launcher` started in cwd: ['', cwd, ...].
        if cwd not in sys.path:
            sys.path.insert(1 if sys.path[:1] == [""] else 0, cwd)
    env = claim.get("env")
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    shell = getattr(app, "shell", None)
    for arg in claim.get("argv", []):
        if arg.startswith(HISTORY_FILE_ARG) and shell is not None:
            value = arg[len(HISTORY_FILE_ARG) :]
            if value == ":memory:":
                _use_memory_history(shell.history_manager)
    import importlib

    importlib.invalidate_caches()


def _use_memory_history(history: Any) -> None:
    """As a kernel started with ``--HistoryManager.hist_file=:memory:``: no saving
    thread, an in-memory database. The thread must go first: it keeps its own
    connection to the history file, and would go on writing there under the new
    in-memory session number (IPython then prints "Session/line number was not
    unique in database" into the user's cell output)."""
    thread = getattr(history, "save_thread", None)
    if thread is not None:
        thread.stop()
        history.save_thread = None
    history.using_thread = False
    history._switch_to_memory_history()


def _check_ready(connection_file: str, timeout: float) -> None:
    """Wait until the kernel answers kernel_info on its shell channel."""
    from jupyter_client.blocking import BlockingKernelClient

    client = BlockingKernelClient(connection_file=connection_file)
    client.load_connection_file()
    deadline = time.monotonic() + timeout
    try:
        while True:  # the first reply to any of the nudges will do
            client.kernel_info()
            try:
                reply = client.get_shell_msg(timeout=0.2)
            except Exception:
                if time.monotonic() > deadline:
                    raise TimeoutError("kernel did not answer kernel_info") from None
                continue
            if reply["msg_type"] == "kernel_info_reply":
                return
    finally:
        client.stop_channels()
        client.shell_channel.close()


def _control(app: object, fd: int, connection_file: str, ready: threading.Event) -> None:
    try:
        ready.wait()
        _check_ready(connection_file, 60.0)
        with open(connection_file) as f:
            info = json.load(f)
        _send(fd, {"event": "ready", "pid": os.getpid(), "connection": info})
        claim = _read_line(fd)
        if claim is None:
            os._exit(0)  # the daemon went away before handing this kernel out
        _apply_claim(app, claim)
        _send(fd, {"event": "claimed"})
        os.close(fd)
    except Exception as exc:  # report, then die: the daemon starts another
        try:
            _send(fd, {"event": "failed", "error": f"{type(exc).__name__}: {exc}"})
        finally:
            os._exit(1)


def main(argv: list[str]) -> None:
    fd = int(argv[argv.index("--control-fd") + 1])
    # --defer: its name in runtimed 0.1.0, still passed by a daemon that ran before an upgrade.
    preimported = "--preimported" in argv or "--defer" in argv
    from ipykernel.kernelapp import IPKernelApp

    if preimported:
        _send(fd, {"event": "imported", "pid": os.getpid()})
        claim = _read_line(fd)
        if claim is None:
            os._exit(0)
        connection_file = claim["connection_file"]
        _apply_claim(None, claim)
        app = IPKernelApp.instance()
        app.initialize(["-f", connection_file, *claim.get("argv", [])])
        _send(fd, {"event": "claimed"})
        os.close(fd)
        app.start()
        return
    connection_file = argv[argv.index("-f") + 1]
    app = IPKernelApp.instance()
    ready = threading.Event()
    threading.Thread(target=_control, args=(app, fd, connection_file, ready), daemon=True).start()
    app.initialize(["-f", connection_file])
    ready.set()
    app.start()


if __name__ == "__main__":
    main(sys.argv[1:])
