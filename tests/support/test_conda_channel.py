"""Tests for the cached local conda channel fixture (tests/support/conda_channel.py).

These solve and install for real with py-rattler. The first run on a machine
builds the channel (~15 s plus the pip download); later runs reuse it.
Run with ``-s`` to see the timings that are printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
import rattler
from packaging.requirements import Requirement
from rattler import Channel, Gateway, RepoDataRecord, Subdir, VirtualPackage
from rattler.exceptions import GatewayError, InstallerError, SolverError

from . import conda_channel as cc

T = TypeVar("T")

PY_VER = f"{sys.version_info.major}.{sys.version_info.minor}"
KERNEL_SPECS = ["python", "ipykernel", "ipywidgets"]
IMPORT_CHECK = """
import json, sys
import ipykernel, ipywidgets, ssl, sqlite3, ctypes, zmq, tornado, psutil
print(json.dumps({
    "prefix": sys.prefix,
    "executable": sys.executable,
    "modules": [m.__file__ for m in (ipykernel, ipywidgets, ssl, sqlite3, zmq, psutil)],
}))
"""


# ------------------------------------------------------------------ helpers


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def solve(source: str, specs: Sequence[str], cache: Path) -> list[RepoDataRecord]:
    return run(
        rattler.solve(
            sources=[Channel(source)],
            specs=list(specs),
            gateway=Gateway(cache_dir=cache / "repodata"),
            platforms=[Subdir.current(), Subdir("noarch")],
            virtual_packages=VirtualPackage.detect(),
        )
    )


def install(records: list[RepoDataRecord], prefix: Path, cache: Path) -> None:
    run(
        rattler.install(
            records,
            target_prefix=prefix,
            cache_dir=cache / "pkgs",
            show_progress=False,
        )
    )


def clean_env(tmp: Path) -> dict[str, str]:
    """Environment for running an installed interpreter, isolated from ours."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "CONDA", "JUPYTER", "IPYTHON")) and k != "VIRTUAL_ENV"
    }
    env.update(
        HOME=str(tmp),
        IPYTHONDIR=str(tmp / "ipython"),
        JUPYTER_RUNTIME_DIR=str(tmp / "jupyter-runtime"),
    )
    return env


def run_python(prefix: Path, code: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(prefix / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        env=clean_env(tmp),
        timeout=120,
        check=False,
    )


def check_kernel_env(prefix: Path, tmp: Path) -> None:
    """The env's python imports everything from the env, not from our Python."""
    proc = run_python(prefix, IMPORT_CHECK, tmp)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert Path(result["prefix"]) == prefix
    assert Path(result["executable"]).parent == prefix / "bin"
    for module_file in result["modules"]:
        assert Path(module_file).is_relative_to(prefix), module_file


def timed(label: str, start: float) -> float:
    elapsed = time.monotonic() - start
    print(f"\n[conda-channel] {label}: {elapsed:.2f} s")
    return elapsed


# ----------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def channel() -> Path:
    start = time.monotonic()
    path = cc.build_channel()
    timed("build_channel() (first call in this session)", start)
    return path


@pytest.fixture(scope="session")
def rattler_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package cache shared by this session: the first install is cold."""
    return tmp_path_factory.mktemp("rattler-cache")


@pytest.fixture(scope="session")
def kernel_env(channel: Path, rattler_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """python + ipykernel + ipywidgets installed from the directory channel."""
    prefix = tmp_path_factory.mktemp("envs") / "kernel-env"
    start = time.monotonic()
    records = solve(channel.as_uri(), KERNEL_SPECS, rattler_cache)
    timed(f"solve {KERNEL_SPECS} from file:// channel ({len(records)} records)", start)
    start = time.monotonic()
    install(records, prefix, rattler_cache)
    timed("install into fresh prefix, cold package cache", start)
    return prefix


# -------------------------------------------------------------------- tests


def test_cache_root_honours_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNTIMED_TEST_CACHE", str(tmp_path / "a" / "b"))
    assert cc.test_cache_root() == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir()


def test_channel_layout(channel: Path) -> None:
    info = json.loads((channel / "channel-info.json").read_text())
    names: dict[str, set[str]] = {}
    for subdir in ("noarch", "linux-64"):
        repodata = json.loads((channel / subdir / "repodata.json").read_text())
        names[subdir] = {r["name"] for r in repodata["packages.conda"].values()}
    assert {"rt-hello", "rt-needs-missing", "ipykernel", "ipywidgets", "pip"} <= names["noarch"]
    assert {"python", "python_abi", "pyzmq", "tornado", "psutil", "debugpy"} <= names["linux-64"]
    assert "rt-does-not-exist" not in names["noarch"] | names["linux-64"]
    print(
        f"\n[conda-channel] {len(info['packages'])} packages, "
        f"{info['size_bytes'] / 2**20:.1f} MiB, cold build timings {info['seconds']}"
    )


def test_build_channel_is_cached(channel: Path) -> None:
    start = time.monotonic()
    assert cc.build_channel() == channel
    assert timed("warm build_channel()", start) < 1.0


def test_concurrent_callers_get_the_same_channel(channel: Path) -> None:
    """Two processes at once (the cache is warm here; the lock covers cold)."""
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('cc', {cc.__file__!r})\n"
        "mod = sys.modules['cc'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(mod)\n"
        "print(mod.build_channel())\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outputs == [str(channel)] * 2


@pytest.mark.slow
def test_kernel_env_from_directory_channel(kernel_env: Path, tmp_path: Path) -> None:
    check_kernel_env(kernel_env, tmp_path)
    # Relocation worked: RUNPATH-relative libpython, rewritten text placeholders.
    proc = run_python(
        kernel_env,
        "import sysconfig; print(sysconfig.get_config_var('prefix'))",
        tmp_path,
    )
    assert proc.stdout.strip() == str(kernel_env)
    # Entry points of noarch (jupyter) and linux-64 (debugpy) packages run.
    for script in ("jupyter", "debugpy"):
        proc = subprocess.run(
            [str(kernel_env / "bin" / script), "--version"],
            capture_output=True,
            text=True,
            env=clean_env(tmp_path),
            check=False,
        )
        assert proc.returncode == 0, (script, proc.stderr)
    assert (kernel_env / "share/jupyter/kernels/python3/kernel.json").is_file()


@pytest.mark.slow
def test_kernel_round_trip(kernel_env: Path, tmp_path: Path) -> None:
    """Start a real ipykernel from the env and execute code in it."""
    code = (
        "from jupyter_client.manager import start_new_kernel\n"
        "km, kc = start_new_kernel(kernel_name='python3', startup_timeout=60)\n"
        "try:\n"
        "    reply = kc.execute_interactive('import sys; print(sys.prefix)', timeout=60)\n"
        "    assert reply['content']['status'] == 'ok', reply\n"
        "finally:\n"
        "    kc.stop_channels(); km.shutdown_kernel(now=True)\n"
    )
    proc = run_python(kernel_env, code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert str(kernel_env) in proc.stdout


def test_directory_path_channel_solves(channel: Path, tmp_path: Path) -> None:
    """A plain directory path (no file:// scheme) also works as a channel."""
    records = solve(str(channel), KERNEL_SPECS, tmp_path)
    assert {"python", "ipykernel", "ipywidgets", "pyzmq"} <= {r.name.normalized for r in records}


@pytest.mark.slow
def test_kernel_env_over_http(channel: Path, rattler_cache: Path, kernel_env: Path, tmp_path: Path) -> None:
    # kernel_env ran first, so the package cache is warm (same files, new URLs).
    prefix = tmp_path / "http-env"
    with cc.ChannelServer(channel) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert not server.url.endswith("/")
        start = time.monotonic()
        records = solve(server.url, KERNEL_SPECS, tmp_path)
        timed(f"solve {KERNEL_SPECS} over HTTP", start)
        assert all(r.url.startswith(server.url) for r in records)
        start = time.monotonic()
        install(records, prefix, rattler_cache)
        timed("install over HTTP into fresh prefix, warm package cache", start)
    check_kernel_env(prefix, tmp_path)


def test_rt_hello_installs_and_replaces_prefix(channel: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "hello-env"
    records = solve(channel.as_uri(), ["rt-hello"], tmp_path)
    assert [r.name.normalized for r in records] == ["rt-hello"]
    install(records, prefix, tmp_path)
    assert (prefix / "share/rt-hello/hello.txt").read_text() == "hello from rt-hello\n"
    assert (prefix / "share/rt-hello/prefix.txt").read_text() == f"prefix={prefix}\n"
    out = subprocess.run([str(prefix / "bin/rt-hello")], capture_output=True, text=True, check=True)
    assert out.stdout == "hello from rt-hello\n"


def test_unsolvable_spec_names_missing_package(channel: Path, tmp_path: Path) -> None:
    with pytest.raises(SolverError) as excinfo:
        solve(channel.as_uri(), ["rt-needs-missing"], tmp_path)
    message = str(excinfo.value)
    # e.g. "Cannot solve the request because of: rt-needs-missing * cannot be
    # installed because there are no viable options:\n└─ rt-needs-missing 1.0.0
    # would require\n   └─ rt-does-not-exist *, for which no candidates were found.\n"
    assert "rt-does-not-exist" in message
    assert message.startswith("Cannot solve the request because of:")


def test_unknown_package_is_a_solver_error(channel: Path, tmp_path: Path) -> None:
    with pytest.raises(SolverError, match="No candidates were found for rt-nope"):
        solve(channel.as_uri(), ["rt-nope"], tmp_path)


def test_unreachable_channel_is_a_gateway_error(tmp_path: Path) -> None:
    with pytest.raises(GatewayError) as excinfo:
        solve("http://127.0.0.1:9", ["python"], tmp_path)
    # "error sending request for url (http://127.0.0.1:9/linux-64/
    # repodata_shards.msgpack.zst)\nCaused by: client error (Connect)\n
    # Caused by: tcp connect error\nCaused by: Connection refused (os error 111)"
    message = str(excinfo.value)
    assert "http://127.0.0.1:9/" in message
    assert "Connection refused" in message


def test_server_gone_during_install_is_an_installer_error(channel: Path, tmp_path: Path) -> None:
    with cc.ChannelServer(channel) as server:
        records = solve(server.url, ["rt-hello"], tmp_path)
    with pytest.raises(InstallerError, match=re.escape("failed to fetch rt-hello-1.0.0-0.conda")):
        install(records, tmp_path / "env", tmp_path)


# ---------------------------------------------------- conversion unit tests


@pytest.mark.parametrize(
    ("pep440", "conda"),
    [
        ("", ""),
        ("~=1.4.2", ">=1.4.2,<1.5"),
        ("~=2.2", ">=2.2,<3"),
        ("~=4.0.16", ">=4.0.16,<4.1"),
        ("==1.2.*", "1.2.*"),
        ("==1.0", "==1.0"),
        ("===1.0", "==1.0"),
        ("!=6.0.*,>=5.1", "!=6.0.*,>=5.1"),
        ("<3.1.0,>=3.0.41", "<3.1.0,>=3.0.41"),
        (">= 3.11", ">=3.11"),
        (">4.6", ">4.6"),
    ],
)
def test_conda_version_spec(pep440: str, conda: str) -> None:
    assert cc.conda_version_spec(pep440) == conda
    if conda:
        rattler.MatchSpec(f"foo {conda}")  # parses


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("jupyter_client", "jupyter-client"),
        ("Foo.Bar__baz", "foo-bar-baz"),
        ("ipywidgets", "ipywidgets"),
    ],
)
def test_normalize_name(name: str, normalized: str) -> None:
    assert cc.normalize_name(name) == normalized


def test_python_package_depends_on_nothing(channel: Path) -> None:
    repodata = json.loads((channel / "linux-64/repodata.json").read_text())
    (python,) = [r for r in repodata["packages.conda"].values() if r["name"] == "python"]
    assert python["depends"] == []
    assert python["version"].startswith(PY_VER + ".")


def test_wheel_depends_markers_and_extras() -> None:
    def wheel(name: str, *requires: str) -> cc._Wheel:
        return cc._Wheel(
            path=Path(f"{name}.whl"),
            name=name,
            version="1.0",
            pure=True,
            requires_python="",
            requires=[Requirement(r) for r in requires],
            entry_points=[],
            summary="",
            license="",
        )

    a = wheel("a", "B_b[x]>=1", "f; sys_platform == 'win32'", "g; extra == 'test'", "h ~=1.4.2")
    b = wheel("b-b", "c>=2; extra == 'x'", "d; extra == 'y'", "e")
    wheels = {"a": a, "b-b": b}
    # b-b's own requirement "e" is b-b's dependency, not a's; its extra "x" pulls c in.
    assert cc._wheel_depends(a, wheels) == ["b-b >=1", "c >=2", "h >=1.4.2,<1.5"]
    assert cc._wheel_depends(b, wheels) == ["e"]
