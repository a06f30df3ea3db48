"""Project envs through the kernelspec, driven by nbclient (real daemon, real uv, real
kernels): a pyproject.toml untrusted, trusted, then locked with ``uv lock`` (a new
set; the old set's env deleted once the new one is ready, a running kernel's env
once it ends), an environment.yml with a pip: list (the local conda channel), nested
projects with a malformed one, and the argv launcher finding the project from its cwd."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import psutil
import pytest
from jupyter_client.manager import KernelManager

from runtimed.core.records import manifest_extras
from runtimed.envs.envdir import read_manifest
from runtimed_uv.backend import find_uv
from tests.envscripts.test_kernel_launcher_raw import Launched, free_ports, spec_argv, vscode_flags
from tests.kernels.test_notebook_deps import notebook, package_kernels, run, text, trust
from tests.kernels.test_provisioner import install_spec, wait_kernels
from tests.support.conda_channel import build_channel
from tests.support.daemon import DaemonProcess, wait_for

pytestmark = pytest.mark.slow  # a daemon, kernels, installs from PyPI

CONFIG = "[backends.uv]\npool_size = 2\nkernels = 1\n[daemon]\nlease_check_s = 0.3\n"
VERSION = ["import six\nprint(six.__version__)"]


def nb_at(path: Path, cells: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return notebook(path, cells)


def project(root: Path, dependencies: list[str], *, git: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if git:
        (root / ".git").mkdir(exist_ok=True)
    file = root / "pyproject.toml"
    deps = json.dumps(dependencies)
    file.write_text(f'[project]\nname = "demo"\nversion = "0"\nrequires-python = ">=3.10"\ndependencies = {deps}\n')
    return file


def start(daemon_factory: type[DaemonProcess], tmp_path: Path, mp: pytest.MonkeyPatch, config: str) -> DaemonProcess:
    trust_file = tmp_path / "trust.json"
    mp.setenv("RUNTIMED_TRUST_FILE", str(trust_file))  # `runtimed trust` and the daemon share it
    started = daemon_factory(config=config, env={"RUNTIMED_TRUST_FILE": str(trust_file)}).start()
    install_spec(started, tmp_path, mp)
    mp.setenv("RUNTIMED_CONFIG", str(started.config_file))
    return started


@pytest.fixture
def daemon(daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DaemonProcess:
    started = start(daemon_factory, tmp_path, monkeypatch, CONFIG)
    wait_kernels(started)
    return started


def project_sets(daemon: DaemonProcess, backend: str = "uv") -> list[Any]:
    return list(daemon.status().pools[backend].warm_sets)


def prefix_of(km: KernelManager) -> str:
    client = km.blocking_client()
    client.start_channels()
    out: list[str] = []
    try:
        client.wait_for_ready(timeout=60)
        code = "import sys, six; print(sys.prefix, six.__version__)"
        client.execute_interactive(code, timeout=60, output_hook=lambda m: out.append(m["content"].get("text", "")))
    finally:
        client.stop_channels()
    return "".join(out).strip()


def test_a_uv_project_untrusted_then_trusted_then_locked(
    daemon: DaemonProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uv_cache: Path
) -> None:
    file = project(tmp_path / "proj", ["six"])
    nb = nb_at(tmp_path / "proj" / "notebooks" / "a.ipynb", VERSION)
    untrusted = run(nb, monkeypatch)
    said = text(untrusted)
    assert untrusted[0]["ename"] == "ModuleNotFoundError" and f"runtimed trust {file}" in said, said

    trust(str(file))
    km = KernelManager(kernel_name="rt")  # a kernel of the unlocked project, still running later
    km.start_kernel(cwd=str(nb.parent))  # no notebook named: the project is found from the cwd
    try:
        first_prefix, first_version = prefix_of(km).split()
        assert first_version != "1.15.0"
        wait_for(lambda: [len(s.ready) for s in project_sets(daemon)] == [1], timeout=120, what="the refill")
        old_ready = Path(project_sets(daemon)[0].ready[0])

        lock = [find_uv() or "uv", "lock", "-q", "--exclude-newer", "2021-01-01"]
        env = {**os.environ, "UV_CACHE_DIR": str(uv_cache)}
        subprocess.run(lock, cwd=file.parent, env=env, check=True, timeout=120)
        assert "runtimed trust" in text(run(nb, monkeypatch))  # the lock changed the project: approve again
        trust(str(file))
        assert text(run(nb, monkeypatch)).strip() == "1.15.0"  # exactly the locked version

        wait_for(lambda: not old_ready.exists(), timeout=60, what="the old set's env to be deleted")
        assert [(s.packages, s.project) for s in project_sets(daemon)] == [(["six==1.15.0"], str(file))]
        assert Path(first_prefix).exists()  # the running kernel keeps its env...
    finally:
        km.shutdown_kernel(now=True)
    wait_for(lambda: not Path(first_prefix).exists(), timeout=60, what="the ended kernel's env to be deleted")


def test_a_projects_exclude_newer_and_requires_python_are_applied(
    daemon: DaemonProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dated = project(tmp_path / "dated", ["six"])
    dated.write_text(dated.read_text() + '[tool.uv]\nexclude-newer = "2021-01-01T00:00:00Z"\n')
    trust(str(dated))
    assert text(run(nb_at(dated.parent / "a.ipynb", VERSION), monkeypatch)).strip() == "1.15.0"  # not 1.16+

    old_python = project(tmp_path / "py2", ["six"])
    old_python.write_text(old_python.read_text().replace('">=3.10"', '"<3"'))
    trust(str(old_python))
    outputs = run(nb_at(old_python.parent / "a.ipynb", VERSION), monkeypatch)
    said = text(outputs)
    assert outputs[0]["ename"] == "ModuleNotFoundError", outputs  # a base kernel, that says why
    assert "requires-python <3 is not met by the envs' python 3." in said, said


def test_nested_projects_the_closest_wins_and_a_malformed_one_says_why(
    daemon: DaemonProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer = project(tmp_path / "outer", ["idna"])
    inner = project(tmp_path / "outer" / "inner", ["six"], git=False)
    trust(str(outer))
    trust(str(inner))
    cells = ["import six\nprint('six')", "import idna"]
    outputs = run(nb_at(inner.parent / "deep" / "n.ipynb", cells), monkeypatch)
    assert outputs[0]["text"].strip() == "six" and outputs[1]["ename"] == "ModuleNotFoundError", outputs

    broken = tmp_path / "outer" / "broken"
    broken.mkdir()
    (broken / "pyproject.toml").write_text("[project\n")
    outputs = run(notebook(broken / "n.ipynb", ["import idna"]), monkeypatch)
    said = text(outputs)
    assert outputs[0]["ename"] == "ModuleNotFoundError", outputs  # a base kernel, not the outer project's
    assert f"project file {broken / 'pyproject.toml'} could not be read" in said and "Expected" in said, said


def test_an_environment_yml_with_a_pip_list(
    daemon_factory: type[DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = build_channel()
    config = (
        f"[backends.conda]\npool_size = 1\nkernels = 0\nchannels = [{json.dumps(str(channel))}]\n"
        "[backends.uv]\npool_size = 1\nkernels = 0\n"
    )
    daemon = start(daemon_factory, tmp_path, monkeypatch, config)
    daemon.wait_pool("conda", 1, timeout=300)
    root = tmp_path / "condaproj"
    (root / ".git").mkdir(parents=True)
    env_file = root / "environment.yml"
    env_file.write_text(f"name: demo\nchannels:\n  - {channel}\ndependencies:\n  - rt-hello\n  - pip:\n    - six\n")
    trust(str(env_file))
    code = "import glob, sys, six\nprint(len(glob.glob(sys.prefix + '/conda-meta/rt-hello-*.json')), six.PY3)"
    assert text(run(notebook(root / "n.ipynb", [code]), monkeypatch)).strip() == "1 True"

    def extras() -> list[list[str]]:  # the project set's refilled env records its packages, pip ones too
        manifests = [read_manifest(path) for path in (daemon.cache_dir / "envs").glob("runtimed-conda-*")]
        return [manifest_extras(m) for m in manifests if m is not None]

    wait_for(lambda: ["rt-hello", "six"] in extras(), timeout=120, what="the project set's env")


def test_the_argv_launcher_finds_the_project_from_its_cwd(daemon: DaemonProcess, tmp_path: Path) -> None:
    """VS Code names no notebook: it runs the kernelspec's argv in the notebook's directory."""
    file = project(tmp_path / "vsproj", ["six"])
    trust(str(file))
    cwd = tmp_path / "vsproj" / "notebooks"
    cwd.mkdir()
    info = free_ports()
    connection_file = tmp_path / "kernel-vs.json"
    argv = [a.replace("{connection_file}", str(connection_file)) for a in spec_argv(daemon)]
    argv = [a for a in argv if a not in ("-f", str(connection_file))] + vscode_flags(info, connection_file)
    launched = Launched(argv, info, cwd, dict(os.environ))
    try:
        reply, out = launched.run("import os, six, sys\nprint(six.PY3, sys.prefix, os.getpid())")
        assert reply["status"] == "ok", reply
        assert out.split()[0] == "True" and Path(out.split()[1]).parent == daemon.cache_dir / "envs", out
    finally:
        launched.close()
    wait_for(lambda: not psutil.pid_exists(int(out.split()[2])), timeout=60, what="the daemon to reap the kernel")


def test_the_second_kernel_of_a_project_is_a_pre_started_one_of_its_set(
    daemon: DaemonProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = project(tmp_path / "proj", ["six"])
    trust(str(file))
    nb = nb_at(tmp_path / "proj" / "n.ipynb", VERSION)
    first = text(run(nb, monkeypatch)).strip()
    assert first.startswith("1."), first
    wait_for(lambda: package_kernels(daemon) >= 1, timeout=120, what="a pre-started kernel of the project")
    log = daemon.cache_dir / "runtimed.log"
    assert "of the package set" not in log.read_text()
    assert text(run(notebook(tmp_path / "proj" / "other.ipynb", VERSION), monkeypatch)).strip() == first
    assert "of the package set" in log.read_text()  # another notebook of the project: its pre-started kernel
