"""Names that users, installed files and plugins already use keep working after the
layout by concern: ``python -m runtimed.worker``, ``python -m runtimed.kernel``, the
provisioner's entry point, ``runtimed.plugins.hookimpl``, and workers of an older
daemon found as strays."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

from runtimed.util.proctree import is_worker_of


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60, check=False)


def test_python_m_runtimed_worker_still_runs_a_worker() -> None:
    result = _run("-m", "runtimed.worker", "uv", "--describe")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["backend"] == "uv"


def test_python_m_runtimed_kernel_still_runs_the_legacy_launcher() -> None:
    result = _run("-m", "runtimed.kernel", "--help")
    assert result.returncode == 0, result.stderr
    assert "python -m runtimed.kernel" in result.stdout


def test_the_provisioner_entry_point_loads() -> None:
    (ep,) = [e for e in entry_points(group="jupyter_client.kernel_provisioners") if e.name == "runtimed-provisioner"]
    assert ep.value == "runtimed.kernels.provisioner:RuntimedProvisioner"
    assert ep.load().__name__ == "RuntimedProvisioner"


def test_plugins_written_for_earlier_versions_get_the_same_hook_marker() -> None:
    from runtimed.backend import hookimpl
    from runtimed.plugins import hookimpl as old_hookimpl

    assert old_hookimpl is hookimpl


def test_workers_of_an_older_daemon_are_recognised_as_strays() -> None:
    prefix = "/c/backends/"
    old = ["/usr/bin/python", "-m", "runtimed.worker", "uv", "--cache-dir", "/c/backends/uv"]
    new = ["/usr/bin/python", "-P", "-m", "runtimed.workers.child", "uv", "--cache-dir", "/c/backends/uv"]
    assert is_worker_of(old, prefix) and is_worker_of(new, prefix)
    assert not is_worker_of(new, "/other/backends/")
    assert not is_worker_of(["/usr/bin/python", "-m", "something.else", "/c/backends/uv"], prefix)
