"""Fault injection with test-only backend plugins in real worker processes: crashes,
segfaults, hangs, leftover children, import failures, memory hogs. Whatever one
backend does, the others keep serving and nothing is left behind."""

from __future__ import annotations

from pathlib import Path

import psutil

from tests.support.daemon import DaemonProcess, wait_for
from tests.support.plugins import install_toys

FAST_SUPERVISION = """
[supervision]
start_grace_s = 0.5
restart_base_s = 0.1
restart_cap_s = 0.5
max_restarts = 4
restart_window_s = 30
failed_cooldown_s = 3
"""


def _pools(**sizes: int) -> str:
    return "".join(f"[backends.{name.replace('_', '-')}]\npool_size = {n}\n" for name, n in sizes.items())


def _toy_children(daemon: DaemonProcess) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "toy-child" in cmd and any(str(daemon.cache_dir) in a for a in cmd):
            found.append(p)
    return found


def _gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_misbehaving_backends_leave_the_others_serving(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    site = install_toys(
        tmp_path / "site", ok="", crash="crash", segv="segv", orphan="orphan", import_crash="import_crash", fail="fail"
    )
    daemon = daemon_factory(
        config=_pools(uv=0, ok=2, crash=1, segv=1, orphan=1, import_crash=1, fail=1) + FAST_SUPERVISION,
        env={"PYTHONPATH": str(site)},
    ).start()

    def settled() -> bool:
        pools = daemon.status().pools
        return (
            pools["ok"].available == 2
            and pools["crash"].worker.restarts >= 2  # type: ignore[union-attr]
            and pools["segv"].worker.restarts >= 2  # type: ignore[union-attr]
            and pools["orphan"].worker.restarts >= 2  # type: ignore[union-attr]
            and pools["import-crash"].worker.state == "failed"  # type: ignore[union-attr]
            and pools["fail"].error is not None
        )

    wait_for(settled, timeout=90, what="every fault to show")
    pools = daemon.status().pools
    assert pools["crash"].error.kind == "crashed" and "exit code 1" in pools["crash"].error.message  # type: ignore[union-attr]
    assert "SIGSEGV" in pools["segv"].error.message  # type: ignore[union-attr]
    failed = pools["import-crash"]
    assert failed.worker.last_exit.startswith("exit code 7")  # type: ignore[union-attr]
    assert failed.error is not None and "failed" in failed.error.message
    assert pools["fail"].error.kind == "invalid_package" and pools["fail"].error.package == "toy-missing"  # type: ignore[union-attr]
    # It backs off between attempts (visible as the next retry), and keeps counting failures.
    wait_for(lambda: (e := daemon.status().pools["fail"].error) and e.retry_in_s and e.failures >= 2, timeout=30)

    # The healthy backend serves throughout.
    with daemon.client() as c:
        env = c.take("ok")
    assert env is not None and env.packages == ["toy==1.0"]

    # Children of crashed workers are killed right after them. The orphan backend starts
    # a child and dies 0.3 s later, again and again: children must be seen (else this
    # checks nothing), and every one seen must be gone within seconds, daemon running.
    seen: dict[int, psutil.Process] = {}

    def children_seen() -> bool:
        seen.update((p.pid, p) for p in _toy_children(daemon) if "orphan" in " ".join(p.info["cmdline"] or []))
        return len(seen) >= 2

    wait_for(children_seen, timeout=60, interval=0.02, what="the orphan backend's children to appear")
    for child in seen.values():
        wait_for(lambda c=child: _gone(c), timeout=5, what=f"{child} (outlived its worker) to be killed")

    # Crashed builds leave no partial env behind: partial dirs never outnumber running builds.
    def partials_accounted_for() -> bool:
        envs = daemon.cache_dir / "envs"
        stray = [e for e in envs.iterdir() if not (e / ".runtimed" / "manifest.json").exists()]
        return len(stray) <= sum(p.warming for p in daemon.status().pools.values())

    wait_for(partials_accounted_for, timeout=10, what="no partial env beyond the builds in flight")

    # The failed backend is retried after its cool-down.
    restarts = failed.worker.restarts  # type: ignore[union-attr]
    wait_for(
        lambda: daemon.status().pools["import-crash"].worker.restarts > restarts,  # type: ignore[union-attr]
        timeout=30,
        what="cool-down retry",
    )
    daemon.stop()
    assert not _toy_children(daemon)


def test_hung_build_times_out_and_its_tree_is_killed(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    site = install_toys(tmp_path / "site", hang="hang")
    daemon = daemon_factory(
        config=_pools(uv=0) + "[backends.hang]\npool_size = 1\nbuild_timeout = 1.5\n" + FAST_SUPERVISION,
        env={"PYTHONPATH": str(site)},
    ).start()
    wait_for(lambda: _toy_children(daemon), timeout=30, what="the hung build's child")
    first_children = _toy_children(daemon)
    error = wait_for(lambda: daemon.status().pools["hang"].error, timeout=30, what="timeout error")
    assert error.kind == "timeout" and "timed out after 2s" in error.message
    for child in first_children:  # the whole tree went, grandchildren included
        wait_for(lambda c=child: _gone(c), timeout=10, what="kill")
    # The killed worker is restarted (counted once its death is seen: not at the kill itself).
    wait_for(lambda: daemon.status().pools["hang"].worker.restarts >= 1, timeout=10, what="restart")  # type: ignore[union-attr]
    # The timed-out env's partial dir is deleted.
    wait_for(lambda: len(list((daemon.cache_dir / "envs").iterdir())) <= daemon.status().pools["hang"].warming,
             timeout=10, what="partial env deleted")  # fmt: skip


def test_memory_hog_is_killed_and_restarted(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    site = install_toys(tmp_path / "site", hog="hog")
    daemon = daemon_factory(
        config=_pools(uv=0, hog=1) + FAST_SUPERVISION + "memory_limit_mb = 200\n",
        env={"PYTHONPATH": str(site)},
    ).start()
    worker = wait_for(
        lambda: (w := daemon.status().pools["hog"].worker) and w.last_exit and "memory limit" in w.last_exit and w,
        timeout=60,
        what="memory limit kill",
    )
    assert worker.last_exit is not None and "SIGKILL" in worker.last_exit


def test_status_reports_worker_resources(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    site = install_toys(tmp_path / "site", hang="hang")
    daemon = daemon_factory(config=_pools(uv=0, hang=1) + FAST_SUPERVISION, env={"PYTHONPATH": str(site)}).start()
    wait_for(lambda: _toy_children(daemon), timeout=30, what="a build with a child process")
    worker = wait_for(lambda: (w := daemon.status().pools["hang"].worker) and w.children >= 1 and w, timeout=10)
    assert worker.state == "running" and worker.pid and worker.rss_bytes and worker.rss_bytes > 1_000_000
    assert worker.uptime_s is not None and worker.cpu_percent is not None
