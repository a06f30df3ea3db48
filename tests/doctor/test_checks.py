"""Individual doctor checks against real files, processes and HTTP servers in temp dirs."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtimed.config import Config, parse_config
from runtimed.doctor.daemon_checks import (
    check_cache_dir_permissions,
    check_cache_dir_writable,
    check_socket,
    check_stale_processes,
    load_config_checked,
)
from runtimed.doctor.kernelspecs import (
    PROVISIONER_NAME,
    check_kernelspecs,
    find_runtimed_kernelspecs,
    provisioner_installed,
)
from runtimed.doctor.results import CheckStatus, DoctorContext
from runtimed.doctor.tool_checks import channel_url, check_conda_channels
from runtimed.kernels.specs import install, kernel_spec
from runtimed.util.paths import Paths

PASS, WARN, FAIL = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL


def _ctx(tmp_path: Path, config: Config | None = None) -> DoctorContext:
    paths = Paths.resolve(cache_dir=tmp_path / "cache", config_file=tmp_path / "config.toml")
    return DoctorContext(paths, config or Config())


def test_config_check_names_the_bad_key(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    ctx.paths.config_file.write_text("[daemon]\nlog_backups = 0\n")
    result, new_ctx = load_config_checked(ctx.paths)
    assert result.status is FAIL and "log_backups" in result.summary and new_ctx.config is None
    ctx.paths.config_file.write_text("[daemon]\nlog_backups = 5\n")
    result, new_ctx = load_config_checked(ctx.paths)
    assert result.status is PASS and new_ctx.config is not None and new_ctx.config.daemon.log_backups == 5


def test_cache_dir_permissions_and_writability(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    assert check_cache_dir_permissions(ctx)[0].status is PASS  # not created yet
    assert check_cache_dir_writable(ctx)[0].status is PASS  # its parent is writable
    ctx.paths.cache_dir.mkdir(mode=0o755)
    ctx.paths.cache_dir.chmod(0o755)
    loose = check_cache_dir_permissions(ctx)[0]
    assert loose.status is WARN and loose.fix == f"chmod 700 {ctx.paths.cache_dir}"
    ctx.paths.cache_dir.chmod(0o700)
    assert check_cache_dir_permissions(ctx)[0].status is PASS
    assert check_cache_dir_writable(ctx)[0].status is PASS
    assert list(ctx.paths.cache_dir.iterdir()) == []  # the probe file is gone
    ctx.paths.cache_dir.rmdir()
    ctx.paths.cache_dir.write_text("a file")
    assert check_cache_dir_writable(ctx)[0].status is FAIL


def test_socket_check(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    assert check_socket(ctx)[0].status is PASS  # none: no daemon
    ctx.paths.cache_dir.mkdir(mode=0o700)
    ctx.paths.socket.write_text("not a socket")
    assert check_socket(ctx)[0].status is FAIL
    ctx.paths.socket.unlink()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(ctx.paths.socket))
        ctx.paths.socket.chmod(0o666)
        assert [r.status for r in check_socket(ctx)] == [WARN]
        ctx.paths.socket.chmod(0o600)
        assert [r.status for r in check_socket(ctx)] == [PASS]
    finally:
        sock.close()


def test_stale_daemon_json_and_orphan_workers(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    ctx.paths.cache_dir.mkdir()
    assert [r.check for r in check_stale_processes(ctx)] == ["stale-processes"]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ctx.paths.state.write_text(json.dumps({"pid": dead.pid}))
    # A process that looks like a worker of this cache dir, with no daemon above it.
    backends = str(ctx.paths.cache_dir / "backends" / "uv")
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "runtimed.workers.child", "--cache-dir", backends]
    )
    try:
        results = {r.check: r for r in check_stale_processes(ctx)}
        assert results["stale-daemon"].status is WARN and str(dead.pid) in results["stale-daemon"].summary
        assert results["stale-workers"].status is FAIL and str(orphan.pid) in results["stale-workers"].summary
        other = _ctx(tmp_path / "elsewhere")  # another cache dir's workers are not ours
        assert all(r.check != "stale-workers" for r in check_stale_processes(other))
    finally:
        orphan.kill()
        orphan.wait()


@contextlib.contextmanager
def http_channel(root: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_conda_channels(tmp_path: Path) -> None:
    channel = tmp_path / "channel"
    (channel / "noarch").mkdir(parents=True)
    (channel / "noarch" / "repodata.json").write_text("{}")
    assert channel_url("conda-forge") == "https://conda.anaconda.org/conda-forge"
    assert channel_url(str(channel)) == channel.as_uri()
    with http_channel(tmp_path) as base:
        dead = f"http://127.0.0.1:{_closed_port()}/x"
        channels = [str(channel), channel.as_uri(), str(tmp_path / "missing"), f"{base}/channel", f"{base}/nope", dead]
        config = parse_config({"backends": {"conda": {"pool_size": 1, "channels": channels}}})
        ctx = _ctx(tmp_path, config)
        statuses = [r.status for r in check_conda_channels(ctx, installed=True)]
        assert statuses == [PASS, PASS, FAIL, PASS, FAIL, FAIL]
        # With cached repodata an unreachable channel only warns: builds go on offline.
        repodata = ctx.paths.backend_cache("conda") / "repodata"
        repodata.mkdir(parents=True)
        (repodata / "cached.json").write_text("{}")
        assert check_conda_channels(ctx, installed=True)[-1].status is WARN
    assert check_conda_channels(_ctx(tmp_path), installed=False) == []


def test_kernelspecs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_PATH", "")
    kernels = tmp_path / "jupyter" / "kernels"
    ctx = _ctx(tmp_path)
    assert [r.status for r in check_kernelspecs(ctx)] == [WARN]  # none installed
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.symlink_to(sys.executable)
    old = {"argv": [str(python), "-m", "runtimed.kernel", "-f", "{connection_file}"], "language": "python"}
    install(kernels, "rt-good", old)  # a kernelspec from before the provisioner
    install(kernels, "rt-other-daemon", kernel_spec("uv", socket=str(tmp_path / "other.sock")))
    install(kernels, "plain-python", {"argv": [sys.executable, "-m", "ipykernel_launcher"], "language": "python"})
    provisioned = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "metadata": {"kernel_provisioner": {"provisioner_name": PROVISIONER_NAME, "config": {}}},
    }
    install(kernels, "rt-provisioned", provisioned)
    names = sorted(s.name for s in find_runtimed_kernelspecs([kernels]))
    assert names == ["rt-good", "rt-other-daemon", "rt-provisioned"]  # plain-python is not ours
    has_provisioner = provisioner_installed()
    results = {r.check: r for r in check_kernelspecs(ctx)}
    assert results["kernelspec:rt-good"].status is (WARN if has_provisioner else PASS)
    assert results["kernelspec:rt-other-daemon"].status is WARN
    assert results["kernelspec:rt-provisioned"].status is (PASS if has_provisioner else FAIL)
    python.unlink()  # the python a kernelspec runs is deleted
    broken = {r.check: r for r in check_kernelspecs(ctx)}["kernelspec:rt-good"]
    assert broken.status is FAIL and f"runs {python}, which no longer exists" in broken.summary
    assert "runtimed kernel install --name rt-good" in (broken.fix or "")


def test_kernelspecs_of_the_argv_launcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped data file runs a bare ``python`` (jupyter_client's own); an installed
    one runs the launcher by path, which must exist."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_PATH", "")
    kernels = tmp_path / "jupyter" / "kernels"
    install(kernels, "rt-shipped", kernel_spec("uv", portable=True))
    moved = kernel_spec("uv")
    moved["argv"] = [a.replace("kernel_launcher.py", "gone/kernel_launcher.py") for a in moved["argv"]]  # type: ignore[attr-defined]
    install(kernels, "rt-moved", moved)
    results = {r.check: r for r in check_kernelspecs(_ctx(tmp_path))}
    assert results["kernelspec:rt-shipped"].status is (PASS if provisioner_installed() else FAIL)
    assert "python, which no longer exists" not in results["kernelspec:rt-shipped"].summary
    assert results["kernelspec:rt-moved"].status is FAIL
    assert "gone/kernel_launcher.py, which no longer exists" in results["kernelspec:rt-moved"].summary


def test_service_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runtimed.doctor.service_check import check_service, installed_program
    from runtimed.service.manager import ServicePlatform
    from runtimed.service.render import render_launchd_plist, render_systemd_unit, service_spec

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(sys, "platform", "linux")
    ctx = _ctx(tmp_path)
    assert [(r.status, r.summary.split(" (")[0]) for r in check_service(ctx)] == [(PASS, "no service installed")]
    unit = tmp_path / "xdg" / "systemd" / "user" / "runtimed.service"
    unit.parent.mkdir(parents=True)
    spec = service_spec(ctx.paths)
    unit.write_text(render_systemd_unit(spec))
    assert check_service(ctx)[0].status is PASS
    other = service_spec(_ctx(tmp_path / "other").paths)  # another cache dir
    unit.write_text(render_systemd_unit(other))
    assert check_service(ctx)[0].status is WARN
    unit.write_text(render_systemd_unit(spec).replace(spec.argv[0], str(tmp_path / "gone" / "runtimed")))
    gone = check_service(ctx)[0]
    assert gone.status is FAIL and f"starts {tmp_path}/gone/runtimed, which does not exist" in gone.summary
    assert installed_program(ServicePlatform.LAUNCHD, render_launchd_plist(spec)) == spec.argv[0]
    odd = service_spec(Paths.resolve(cache_dir=tmp_path / "a b"))
    assert installed_program(ServicePlatform.SYSTEMD, render_systemd_unit(odd).encode()) == odd.argv[0]
