"""The kernel host: runs in an ENV's python (stdlib + ipykernel only, never runtimed).

The daemon runs this file by path (``python kernel_host.py --control-fd N -f CONNECTION_FILE``)
with a socketpair end as fd N. Two modes:

* default (pre-started): the ipykernel is fully started at once; a thread checks
  that it answers ``kernel_info`` and reports ``{"event": "ready", ...}``. On the
  claim (``{"cwd", "env", "argv"}``) it applies the front end's working directory,
  environment, ``sys.path`` entry and the kernel arguments it accepts, replies
  ``{"event": "claimed"}`` and closes the channel. Nothing runs in the kernel
  before the claim, so the first execution is number 1 and history is empty.
  A claim with ``"connection"`` (the ports and key a front end chose, or those of
  the kernel being restarted) makes the kernel take that connection over first
  (:func:`_take_over`); if a port cannot be bound it replies ``failed`` and the
  daemon discards it.
* ``--preimported``: ipykernel is imported, and the kernel is only
  initialised on the claim, with the claim's connection file (used to measure the
  alternative; see bench/kernel_start.py).

If the channel closes before a claim (the daemon stopped or died), the host exits:
a never handed-out kernel does not outlive its daemon.
"""

from __future__ import annotations

# mypy: disable-error-code="no-untyped-call,attr-defined"
import contextlib
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
TAKEOVER_TIMEOUT_S = 5.0
_HEARTBEATS: list[Any] = []


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
    if claim.get("notice") and shell is not None:
        _notice_on_missing_module(shell, claim["notice"])
    for arg in claim.get("argv", []):
        if arg.startswith(HISTORY_FILE_ARG) and shell is not None:
            value = arg[len(HISTORY_FILE_ARG) :]
            if value == ":memory:":
                _use_memory_history(shell.history_manager)
    import importlib

    importlib.invalidate_caches()


def _notice_on_missing_module(shell: Any, notice: str) -> None:
    """Show ``notice`` (why the notebook's packages are not installed, and how to fix
    it) under the traceback of every import that fails for a missing module."""

    def handler(self: Any, etype: Any, value: Any, tb: Any, tb_offset: Any = None) -> None:
        self.showtraceback((etype, value, tb), tb_offset=tb_offset)
        sys.stderr.write(f"\n{notice}\n")

    shell.set_custom_exc((ModuleNotFoundError,), handler)


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


def _run_in(loop: Any, job: Any) -> None:
    """Run ``job`` on ``loop``'s thread (a zmq socket is touched only from its own
    thread) and wait for it; its exception is raised here."""
    done = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            job()
        except BaseException as exc:
            failure.append(exc)
        finally:
            done.set()

    loop.add_callback(run)
    if not done.wait(TAKEOVER_TIMEOUT_S):
        raise TimeoutError("a kernel thread did not take its new port in time")
    if failure:
        raise failure[0]


def _rebind(sock: Any, old: str, new: str) -> Any:
    def job() -> None:
        sock.bind(new)
        with contextlib.suppress(Exception):  # the old endpoint is only dropped to free the port
            sock.unbind(old)

    return job


def _heartbeat(app: Any, url: str) -> None:
    """A new heartbeat on ``url`` (the echo device blocks its thread: it is replaced,
    not re-bound), then the old one ended."""
    import zmq

    bound = threading.Event()
    failure: list[BaseException] = []
    context = zmq.Context()

    def run() -> None:
        sock = context.socket(zmq.ROUTER)
        sock.linger = 0
        try:
            sock.bind(url)
        except BaseException as exc:
            failure.append(exc)
            sock.close()
            bound.set()
            return
        bound.set()
        try:
            zmq.device(zmq.QUEUE, sock, sock)
        except zmq.ZMQError:
            pass
        finally:
            sock.close()

    threading.Thread(target=run, name="Heartbeat", daemon=True).start()
    bound.wait()
    if failure:
        context.term()
        raise failure[0]
    _HEARTBEATS.append(context)  # referenced for the process's life
    old = getattr(app, "heartbeat", None)
    if old is not None:  # term() waits for the old echo to close its socket: not on the claim's path
        threading.Thread(target=old.context.term, daemon=True).start()


def _take_over(app: Any, info: dict[str, Any], connection_file: str | None) -> None:
    """Serve the connection ``info`` (the ports and key a front end chose) instead of
    the kernel's own: the key first (a message on a new port is checked with it),
    then each socket re-bound from the thread that owns it, the old ports freed."""
    ip, transport = info.get("ip") or app.ip, info.get("transport") or app.transport

    def url(the_ip: str, port: int) -> str:
        return f"tcp://{the_ip}:{port}" if transport == "tcp" else f"ipc://{the_ip}-{port}"

    session = app.session
    session.signature_scheme = info.get("signature_scheme") or session.signature_scheme
    session.key = str(info.get("key", "")).encode()
    shell_thread = getattr(app, "shell_channel_thread", None)  # ipykernel 7: the shell socket's own loop
    owners = {
        "shell": (shell_thread.io_loop if shell_thread else app.io_loop, app.shell_socket),
        "control": (app.control_thread.io_loop, app.control_socket),
        "iopub": (app.iopub_thread.io_loop, app.iopub_thread.socket),
        "stdin": (app.io_loop, app.stdin_socket),
    }
    ports = {}
    for channel, (loop, sock) in owners.items():
        port = int(info[f"{channel}_port"])
        _run_in(loop, _rebind(sock, url(app.ip, getattr(app, f"{channel}_port")), url(ip, port)))
        ports[channel] = port
    ports["hb"] = int(info["hb_port"])
    _heartbeat(app, url(ip, ports["hb"]))
    for channel, port in ports.items():
        setattr(app, f"{channel}_port", port)
    app.ip = ip
    app.kernel.record_ports({f"{channel}_port": port for channel, port in ports.items()})
    if connection_file:
        app.connection_file = connection_file


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
        if claim.get("connection"):
            _take_over(app, claim["connection"], claim.get("connection_file"))
        _apply_claim(app, claim)
        _send(fd, {"event": "claimed"})
        os.close(fd)
    except Exception as exc:  # report, then die: the daemon starts another
        try:
            _send(fd, {"event": "failed", "error": f"{type(exc).__name__}: {exc}"})
        finally:
            os._exit(1)


def _exit_promptly() -> None:
    """Exit once the kernel has stopped (it answered a shutdown request): what a
    normal exit runs (atexit handlers, the user's included: IPython's history;
    non-daemon threads joined; stdio flushed), without the interpreter's teardown,
    which takes ~120 ms more and keeps a restart waiting for the process to end."""
    import atexit

    atexit._run_exitfuncs()
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()  # type: ignore[union-attr]
    os._exit(0)


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
        if claim.get("notice"):
            _notice_on_missing_module(app.shell, claim["notice"])
        _send(fd, {"event": "claimed"})
        os.close(fd)
        app.start()
        _exit_promptly()
    connection_file = argv[argv.index("-f") + 1]
    app = IPKernelApp.instance()
    ready = threading.Event()
    threading.Thread(target=_control, args=(app, fd, connection_file, ready), daemon=True).start()
    app.initialize(["-f", connection_file])
    ready.set()
    app.start()
    _exit_promptly()


if __name__ == "__main__":
    main(sys.argv[1:])
