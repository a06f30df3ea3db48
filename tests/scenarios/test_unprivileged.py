"""End to end as an unprivileged uid (issue 17, item 1): the README install into a
venv of that user, the daemon, an env, a kernel, and no directory that its owner
cannot enter. Sessions and CI run as root, whose permission bypass hid that the
daemon's workers made every directory ``drw-------``: this test runs as ``nobody``.

Needs root (to switch uid with ``setpriv``), a Python that ``nobody`` may run and
network access to PyPI (pip and uv download into the user's own caches).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil
import pytest

from tests.support.daemon import ROOT

pytestmark = pytest.mark.slow

USER = "nobody"
CONFIG = "[backends.uv]\npool_size = 2\nkernels = 0\n[backends.conda]\npool_size = 0\n"
COPIED = ("runtimed", "plugins/uv", "plugins/conda", "pyproject.toml", "README.md")
NETWORK = ("CERT", "SSL", "CA_BUNDLE", "PROXY")
IGNORED = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", ".mypy_cache", ".ruff_cache")

# Run as the user with the venv's python: start a kernel from the runtimed kernelspec
# (the provisioner takes it from the pool) and print what the kernel says.
KERNEL_CHECK = textwrap.dedent(
    """
    import json
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="rt")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        msg_id = kc.kernel_info()
        reply = kc.get_shell_msg(timeout=30)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=30)
        out = []
        kc.execute_interactive("import sys; print(sys.prefix)", timeout=60,
                               output_hook=lambda m: out.append(m["content"].get("text", "")))
        print(json.dumps({"reply": reply["msg_type"], "status": reply["content"]["status"], "prefix": "".join(out)}))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    """
)

# Run as the user: every directory under argv[1] that its owner cannot search (a
# directory deleted during the walk, e.g. an env emptied from trash/, is passed over).
UNENTERABLE = (
    "import os, stat, sys\n"
    "for path, dirs, _ in os.walk(sys.argv[1]):\n"
    "    for d in dirs:\n"
    "        full = os.path.join(path, d)\n"
    "        try:\n"
    "            mode = os.lstat(full).st_mode\n"
    "        except FileNotFoundError:\n"
    "            continue\n"
    "        if not mode & stat.S_IXUSR: print(full)\n"
)


class User:
    """Runs commands as ``uid`` with a home directory of its own."""

    def __init__(self, uid: int, gid: int, home: Path) -> None:
        self.uid, self.gid, self.home = uid, gid, home
        self.venv = home / "venv"
        self.cache = home / ".cache" / "runt"
        self.env = {
            # The machine's network settings (CA bundle, proxy, pip's), as the user's login has them.
            **{k: v for k, v in os.environ.items() if k.startswith("PIP_") or any(w in k.upper() for w in NETWORK)},
            "HOME": str(home),
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "RUNTIMED_CACHE_DIR": str(self.cache),
            "RUNTIMED_CONFIG": str(home / "config.toml"),
            "RUNTIMED_AUTO_START": "0",
            "UV_CACHE_DIR": str(home / ".cache" / "uv"),
            "PIP_CACHE_DIR": str(home / ".cache" / "pip"),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "JUPYTER_PATH": str(home / "jupyter"),
            "JUPYTER_DATA_DIR": str(home / "jupyter-data"),
            "JUPYTER_RUNTIME_DIR": str(home / "jupyter-runtime"),
            "IPYTHONDIR": str(home / "ipython"),
        }

    def argv(self, command: Sequence[str | os.PathLike[str]]) -> list[str]:
        ids = [f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"]
        return ["setpriv", *ids, "--", *map(os.fspath, command)]

    def run(self, *command: str | os.PathLike[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(command), env=self.env, cwd=self.home, umask=0o022,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def check(self, *command: str | os.PathLike[str], timeout: float = 300) -> str:
        result = self.run(*command, timeout=timeout)
        assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result.stdout

    def processes(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["uids", "environ"]):
            with contextlib.suppress(psutil.Error, TypeError):
                if proc.info["uids"].real == self.uid and (proc.info["environ"] or {}).get("HOME") == str(self.home):
                    found.append(proc)
        return found


def _usable_python(user: User) -> str | None:
    """An interpreter (>= 3.10, with venv) that ``user`` may run: sys.executable often
    lives under /root."""
    for candidate in (
        sys.executable,
        getattr(sys, "_base_executable", ""),
        "/usr/bin/python3",
        "/usr/local/bin/python3",
    ):
        if candidate and os.path.exists(candidate):
            probe = "import sys, venv, ensurepip; assert sys.version_info >= (3, 10)"
            if user.run(candidate, "-c", probe, timeout=60).returncode == 0:
                return candidate
    return None


@pytest.fixture
def user() -> Iterator[User]:
    if os.geteuid() != 0:
        pytest.skip("switching to an unprivileged uid needs root")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        pytest.skip(f"no user {USER!r}")
    home = Path(tempfile.mkdtemp(prefix="runtimed-e2e-", dir="/tmp"))  # the user's once filled
    os.chmod(home, 0o755)
    the_user = User(entry.pw_uid, entry.pw_gid, home)
    try:
        yield the_user
    finally:
        for proc in the_user.processes():
            with contextlib.suppress(psutil.Error):
                proc.kill()
        the_user.run("rm", "-rf", str(home), timeout=120)  # its files: root without DAC cannot
        shutil.rmtree(home, ignore_errors=True)


def _fill_home(user: User) -> Path:
    """The checkout (copied: /work may not be readable, and pip writes egg-info into it)
    and the config file, then the whole home given to the user."""
    src = user.home / "src"
    for name in COPIED:
        source, target = ROOT / name, src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=IGNORED)
        else:
            shutil.copy2(source, target)
    (user.home / "config.toml").write_text(CONFIG)
    for path in [user.home, *user.home.rglob("*")]:
        os.lchown(path, user.uid, user.gid)
    return src


def _wait_listening(user: User, runtimed: Path, daemon: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while user.run(runtimed, "status", timeout=30).returncode != 0:
        assert daemon.poll() is None, f"the daemon exited with {daemon.returncode}"
        assert time.monotonic() < deadline, "the daemon did not listen within 60 s"
        time.sleep(0.2)


def test_readme_install_daemon_env_and_kernel_as_nobody(user: User) -> None:
    python = _usable_python(user)
    if python is None:
        pytest.skip(f"no Python >= 3.10 with venv that {USER} may run")
    src = _fill_home(user)

    # The README's install, into a venv of the user's own (plus jupyter_client, as a Jupyter user has).
    user.check(python, "-m", "venv", user.venv, timeout=120)
    pip = [user.venv / "bin" / "python", "-m", "pip", "install", "-q"]
    user.check(*pip, "-e", src, "-e", src / "plugins" / "uv", "-e", src / "plugins" / "conda", "jupyter_client")
    runtimed = user.venv / "bin" / "runtimed"

    daemon = subprocess.Popen(
        user.argv([runtimed, "run"]), env=user.env, cwd=user.home, umask=0o022,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_listening(user, runtimed, daemon)
        taken = user.run(runtimed, "take", "uv", "--json", "--keep", "--wait", "150", timeout=200)
        log = user.run("tail", "-n", "40", user.cache / "runtimed.log").stdout
        assert taken.returncode == 0, f"{taken.stderr}\n--- runtimed.log:\n{log}"
        env = json.loads(taken.stdout)
        user.check(env["python_path"], "-c", "import ipykernel, ipywidgets", timeout=60)

        user.check(runtimed, "kernel", "install", "--name", "rt", "--kernels-dir", user.home / "jupyter" / "kernels")
        kernel = json.loads(user.check(user.venv / "bin" / "python", "-c", KERNEL_CHECK, timeout=180))
        assert kernel["reply"] == "kernel_info_reply" and kernel["status"] == "ok"
        assert kernel["prefix"].strip().startswith(str(user.cache / "envs")), kernel  # a pooled env

        unenterable = user.check(python, "-c", UNENTERABLE, user.home, timeout=120).split()
        assert unenterable == []
        user.check(runtimed, "stop", timeout=60)
        assert daemon.wait(30) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
