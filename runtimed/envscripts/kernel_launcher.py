"""The kernelspec's argv: ask the runtimed daemon for a kernel on the front end's ports,
else launch ipykernel exactly as a plain kernelspec does.

Run by path with any Python 3 (VS Code may swap ``argv[0]`` for the interpreter the
user picked, which need not have runtimed): standard library only, and only what the
fast path needs. It takes the connection from ``-f FILE`` (jupyter_client writes it)
or VS Code's flags (``--shell=P ... --Session.key=b"KEY" --f=FILE``, no file written),
sends ``take_kernel`` with it, its cwd (the project's search start), env and kernel args.

Served, it stays as the process the front end watches: SIGINT interrupts the
kernel, SIGTERM/SIGHUP end it (SIGKILL after a grace), its own death ends the
kernel at once (the daemon watches it as the kernel's owner, with no grace), and
its exit status is the kernel's (asked from the daemon, whose child the kernel is).
Otherwise (no daemon, an empty pool, any error, ``RUNTIMED_KERNEL_DIRECT=1``) it execs
``PYTHON -m ipykernel_launcher ARGS``, says why on stderr, and with no daemon starts one.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

USAGE = "[--python PY] [--backend B] [--socket S] [--cache-dir D] [-f FILE | VS Code's flags] [KERNEL ARGS]"
DIRECT_ENV = "RUNTIMED_KERNEL_DIRECT"  # set by the provisioner's fallback: it already asked
AUTO_START_ENV = "RUNTIMED_AUTO_START"
OWN_OPTIONS = ("--python", "--backend", "--socket", "--cache-dir")
CONNECT_TIMEOUT_S = 1.0
PING_TIMEOUT_S = 3.0  # a daemon that accepts but does not answer is passed over
TAKE_TIMEOUT_S = 120.0  # a kernel launched in a pooled env (no pre-started one) takes seconds
SIGINT, SIGKILL, SIGTERM = 2, 9, 15  # the same on every POSIX system (signal imports enum)
TERM_GRACE_S = 5.0  # SIGTERM to the kernel, then SIGKILL
SUN_PATH_MAX = 103
PORTS = ("shell", "iopub", "stdin", "control", "hb")
# VS Code's flags (and ipykernel's aliases) -> connection file keys
FLAGS = {
    **{f"--{name}": f"{name}_port" for name in PORTS},
    "--ip": "ip",
    "--transport": "transport",
    "--Session.key": "key",
    "--Session.signature_scheme": "signature_scheme",
}
FILE_FLAGS = ("-f", "--f")  # the connection file


class Launch:
    """What the command line says: the launcher's own options and the kernel's arguments."""

    def __init__(self, argv: list[str]) -> None:
        own, self.kernel_args = split_own(argv)
        self.python = own.get("--python") or sys.executable
        self.backend = own.get("--backend") or "uv"
        self.socket = own.get("--socket")
        self.cache_dir = own.get("--cache-dir")
        self.connection, self.connection_file, self.extra = parse_connection(self.kernel_args)


def _option(arg: str) -> tuple[str, str | None]:
    name, eq, value = arg.partition("=")
    return name, value if eq else None


def split_own(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """The launcher's options (``--python P``, ``--backend=B``, ...) and the rest, in order."""
    own: dict[str, str] = {}
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        name, value = _option(arg)
        if name in OWN_OPTIONS:
            own[name] = value if value is not None else next(args, "")
        else:
            rest.append(arg)
    return own, rest


def unquote(value: str) -> str:
    """``"x"``, ``'x'``, ``b"x"`` -> ``x`` (VS Code quotes values as Python literals)."""
    if value[:1] == "b" and len(value) >= 3 and value[1] == value[-1] and value[1] in "\"'":
        return value[2:-1]
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_connection(kernel_args: list[str]) -> tuple[dict[str, object], str | None, list[str]]:
    """(connection info from the file and the flags, the connection file, the other arguments)."""
    flags: dict[str, object] = {}
    connection_file = None
    extra: list[str] = []
    args = iter(kernel_args)
    for arg in args:
        name, value = _option(arg)
        if name in FILE_FLAGS:
            connection_file = unquote(value if value is not None else next(args, ""))
        elif name in FLAGS:
            raw = unquote(value if value is not None else next(args, ""))
            key = FLAGS[name]
            flags[key] = int(raw) if key.endswith("_port") and raw.isdigit() else raw
        else:
            extra.append(arg)
    info: dict[str, object] = {}
    if connection_file:
        try:
            with open(connection_file) as f:
                loaded = json.load(f)
            info.update(loaded if isinstance(loaded, dict) else {})
        except (OSError, ValueError):
            pass  # VS Code names a file it never writes: the flags say it all
    info.update(flags)
    return info, connection_file, extra


def complete(info: dict[str, object]) -> bool:
    """Every port fixed (the front end connects there): the daemon can serve them."""
    return all(isinstance(info.get(f"{p}_port"), int) and int(str(info[f"{p}_port"])) > 0 for p in PORTS)


def cache_home() -> str:
    """platformdirs' user cache dir (runtimed.util.paths uses it; the tests keep both equal)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        return xdg
    base = "~/Library/Caches" if sys.platform == "darwin" else "~/.cache"
    home = os.environ.get("HOME")
    if home is not None and not os.path.isabs(home):
        import pwd

        return pwd.getpwuid(os.getuid()).pw_dir.rstrip("/") + base[1:]
    return os.path.expanduser(base)


def default_socket(cache_dir: str | None = None) -> str:
    """``runtimed.util.paths.Paths.resolve(cache_dir).socket``, with the standard library."""
    sock = os.environ.get("RUNTIMED_SOCKET")
    if sock:
        return os.path.abspath(sock)
    cache = os.path.abspath(cache_dir or os.environ.get("RUNTIMED_CACHE_DIR") or os.path.join(cache_home(), "runt"))
    path = os.path.join(cache, "runtimed.sock")
    if len(os.fsencode(path)) <= SUN_PATH_MAX:
        return path
    import hashlib
    import tempfile

    digest = hashlib.sha256(os.fsencode(cache)).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"runtimed-{os.geteuid()}", f"{digest}.sock")


class NoDaemon(Exception):
    """Nothing listens on the socket (the only case that starts a daemon)."""


class Refused(Exception):
    """The daemon is there but gives no kernel (or cannot be trusted, or does not answer)."""


class Connection:
    """One NDJSON conversation with the daemon."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(CONNECT_TIMEOUT_S)
        self.buffer = b""
        try:
            self.sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            self.sock.close()
            raise NoDaemon(f"no runtimed daemon at {path}") from exc
        except OSError as exc:
            self.sock.close()
            raise Refused(f"runtimed at {path} does not accept connections ({exc})") from exc
        if peer_uid(self.sock) != os.geteuid():
            self.sock.close()
            raise Refused(f"refusing {path}: it is not served by you (uid {os.geteuid()})")

    def ask(self, message: dict[str, object], timeout: float) -> dict[str, object]:
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(json.dumps(message).encode() + b"\n")
            while b"\n" not in self.buffer:
                data = self.sock.recv(65536)
                if not data:
                    raise Refused("the daemon closed the connection")
                self.buffer += data
        except OSError as exc:  # a timeout too
            raise Refused(f"no answer from runtimed at {self.path} ({exc or type(exc).__name__})") from exc
        line, _, self.buffer = self.buffer.partition(b"\n")
        reply: dict[str, object] = json.loads(line)
        if reply.get("type") == "error":
            raise Refused(f"runtimed: {reply.get('code')}: {reply.get('message')}")
        return reply

    def close(self) -> None:
        self.sock.close()


def peer_uid(sock: socket.socket) -> int | None:
    """The uid serving the socket (as runtimed.util.peercred does)."""
    import struct

    try:
        if hasattr(socket, "SO_PEERCRED"):
            return int(struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1])
        raw = sock.getsockopt(0, getattr(socket, "LOCAL_PEERCRED", 1), 256)  # macOS, BSD: struct xucred
        return int(struct.unpack_from("II", raw)[1])
    except (OSError, struct.error):
        return None


def take_kernel(launch: Launch, path: str) -> dict[str, object]:
    """The kernel the daemon serves on ``launch``'s connection (Refused: none)."""
    request = {
        "type": "take_kernel",
        "env_type": launch.backend,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "argv": launch.extra,
        "owner_pid": os.getpid(),
        "owner_grace_s": 0.0,
        "connection": launch.connection,
        "connection_file": launch.connection_file,
        "wait_s": 0.0,
        "project_dir": os.getcwd(),
    }
    connection = Connection(path)
    try:
        connection.ask({"type": "ping"}, PING_TIMEOUT_S)
        reply = connection.ask(request, TAKE_TIMEOUT_S)
    finally:
        connection.close()
    kernel = reply.get("kernel")
    if reply.get("type") != "kernel" or not isinstance(kernel, dict):
        raise Refused(f"the {launch.backend} pool is empty")
    return kernel


class Watch:
    """Stand in for the kernel: pass signals on, wait for its end."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.term_at: float | None = None

    def install(self) -> None:
        import signal

        signal.signal(signal.SIGINT, self.interrupt)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self.terminate)

    def interrupt(self, _sig: int, _frame: object) -> None:
        self.send(self.pid, SIGINT)  # to its group, as jupyter_client interrupts (interrupt_mode signal)

    def terminate(self, _sig: int, _frame: object) -> None:
        if self.term_at is None:
            self.term_at = time.monotonic()
            self.send(self.pid, SIGTERM)

    @staticmethod
    def send(pid: int, sig: int) -> None:
        try:
            os.killpg(pid, sig)  # the kernel leads its own session
        except OSError:
            try:  # noqa: SIM105 (contextlib costs start-up time)
                os.kill(pid, sig)
            except OSError:
                pass

    def wait(self) -> None:
        """Until the kernel has exited (a pidfd where there is one, else polling)."""
        ended = self._pidfd_waiter() or self._polling_waiter
        while not ended(0.5):
            if self.term_at is not None and time.monotonic() - self.term_at >= TERM_GRACE_S:
                self.send(self.pid, SIGKILL)

    def _pidfd_waiter(self) -> Callable[[float], bool] | None:
        import select

        try:
            fd = os.pidfd_open(self.pid)  # type: ignore[attr-defined]
        except (AttributeError, OSError):
            return None
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return lambda timeout: bool(poller.poll(timeout * 1000))

    def _polling_waiter(self, timeout: float) -> bool:
        time.sleep(timeout)
        try:
            os.kill(self.pid, 0)  # a zombie counts as alive until the daemon reaps it
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False


def exit_code(path: str, kernel_id: str) -> int | None:
    """The ended kernel's exit status, from the daemon (its parent): -N for signal N."""
    try:
        connection = Connection(path)
        try:
            reply = connection.ask({"type": "kernel_exit", "kernel_id": kernel_id, "wait_s": 5.0}, 10.0)
        finally:
            connection.close()
    except (NoDaemon, Refused, ValueError):
        return None
    code = reply.get("returncode")
    return code if isinstance(code, int) else None


def exit_like(code: int | None) -> NoReturn:
    """Exit as the kernel did: its code, or killed by its signal."""
    import signal

    sys.stdout.flush()
    if code is not None and code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        time.sleep(1.0)  # a stopping signal, or one that cannot kill: fall through
        os._exit(128 - code)
    os._exit(1 if code is None else code)


def serve(path: str, kernel: dict[str, object]) -> NoReturn:
    """Stay as the kernel's stand-in until it ends; exit with its status."""
    watch = Watch(int(str(kernel["pid"])))
    watch.install()
    watch.wait()
    exit_like(exit_code(path, str(kernel["id"])))


def auto_start(launch: Launch) -> str:
    """Start a daemon in the background (runtimed.client.autostart, in a detached child
    of runtimed's python) for the next kernels; what was done."""
    if os.environ.get(AUTO_START_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return f"not starting one ({AUTO_START_ENV}={os.environ[AUTO_START_ENV]})"
    code = (
        "import sys\nif sys.path[:1] == ['']: del sys.path[0]\n"
        "from runtimed.client.autostart import auto_start\n"
        "auto_start(cache_dir=sys.argv[1] or None, socket=sys.argv[2] or None)\n"
    )
    command = [launch.python, "-c", code, launch.cache_dir or "", launch.socket or ""]
    try:
        child = os.fork()
        if child == 0:  # pragma: no cover - the detached child
            try:
                os.setsid()
                if os.fork() == 0:
                    devnull = os.open(os.devnull, os.O_RDWR)
                    for fd in (0, 1, 2):
                        os.dup2(devnull, fd)
                    os.chdir(os.path.expanduser("~") if os.path.isdir(os.path.expanduser("~")) else "/")
                    os.execv(launch.python, command)
            finally:
                os._exit(0)
        os.waitpid(child, 0)
    except OSError as exc:
        return f"could not start one: {exc}"
    return "starting one in the background for the next kernels"


def launch_plain(launch: Launch, reason: str) -> NoReturn:
    """Exec ``PYTHON -m ipykernel_launcher ARGS`` (the plain kernelspec), saying why."""
    python = launch.python
    print(f"runtimed: {reason}; starting the kernel with {python}", file=sys.stderr, flush=True)
    os.environ.pop(DIRECT_ENV, None)
    os.execv(python, [python, "-m", "ipykernel_launcher", *launch.kernel_args])


def main(argv: list[str]) -> None:
    if argv[:1] in (["-h"], ["--help"]):
        print(f"usage: kernel_launcher.py {USAGE}\n\n{__doc__}")
        return
    launch = Launch(argv)
    if os.environ.get(DIRECT_ENV) == "1":
        launch_plain(launch, f"{DIRECT_ENV}=1")
    if not complete(launch.connection):
        launch_plain(launch, "no connection file with fixed ports (the kernel chooses them)")
    path = os.path.abspath(launch.socket) if launch.socket else default_socket(launch.cache_dir)
    try:
        kernel = take_kernel(launch, path)
    except NoDaemon as exc:
        launch_plain(launch, f"{exc}; {auto_start(launch)}")
    except (Refused, OSError, ValueError) as exc:
        launch_plain(launch, str(exc))
    serve(path, kernel)


if __name__ == "__main__":
    main(sys.argv[1:])
