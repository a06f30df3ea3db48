"""Env lifecycle with real daemons: leases, keep, GC, live reconfiguration, flush."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from runtimed.envs.envdir import read_lease
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.plugins import install_plugin, toy_backend

FAST_HOUSEKEEPING = "[daemon]\nlease_check_s = 0.3\ngc_interval_s = 0.5\nconfig_poll_s = 0.2\n"


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])


def _envs(daemon: DaemonProcess) -> dict[str, dict]:  # type: ignore[type-arg]
    result = daemon.run_cli("envs", "--json")
    assert result.returncode == 0, result.stderr
    return {e["path"]: e for e in json.loads(result.stdout)}


def test_killed_holders_env_is_collected_but_kept_env_survives(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 2\n" + FAST_HOUSEKEEPING).start()
    daemon.wait_pool("uv", 2)
    holder, owner = _sleeper(), _sleeper()
    with daemon.client() as c:
        leased = c.take("uv", lease_pid=holder.pid)
        kept = c.take("uv", lease_pid=owner.pid, keep=True)
    assert leased is not None and kept is not None
    envs = _envs(daemon)
    assert envs[leased.venv_path]["state"] == "leased" and envs[leased.venv_path]["holder_pid"] == holder.pid
    assert envs[kept.venv_path]["state"] == "kept"
    assert daemon.status().pools["uv"].leased == 1

    # Holders alive: several lease checks and GC sweeps pass, nothing is deleted.
    wait_for(lambda: daemon.status().pools["uv"].available == 2, timeout=120, what="refill")
    assert Path(leased.venv_path).exists() and Path(kept.venv_path).exists()

    for proc in (holder, owner):
        proc.kill()
        proc.wait()
    wait_for(lambda: not Path(leased.venv_path).exists(), timeout=30, what="dead holder's env to be deleted")
    # Kept envs belong to the client: never deleted, never pooled again, even across restarts.
    daemon.stop()
    daemon.start()
    daemon.wait_pool("uv", 2, timeout=30)
    with daemon.client() as c:
        taken = {c.take("uv").venv_path, c.take("uv").venv_path}  # type: ignore[union-attr]
    assert kept.venv_path not in taken
    assert Path(kept.venv_path).exists() and read_lease(Path(kept.venv_path)).keep  # type: ignore[union-attr]


def test_gc_removes_aged_partial_and_untracked_never_leased(daemon_factory: type[DaemonProcess]) -> None:
    # Slow sweeps here: the test drives `runtimed gc` itself.
    daemon = daemon_factory(config="[backends.uv]\npool_size = 2\n[daemon]\ngc_interval_s = 3600\n").start()
    daemon.wait_pool("uv", 2)
    with daemon.client() as c:
        leased = c.take("uv")  # leased to this test process: alive
    assert leased is not None
    daemon.wait_pool("uv", 2)
    envs_dir = daemon.cache_dir / "envs"
    partial = envs_dir / "runtimed-uv-feedface0001"
    (partial / "lib").mkdir(parents=True)
    (partial / "lib" / "junk").write_bytes(b"x" * 100_000)
    untracked = envs_dir / "runtimed-uv-feedface0002"
    subprocess.run(["cp", "-a", leased.venv_path, str(untracked)], check=True)
    (untracked / ".runtimed" / "lease.json").unlink()

    dry = json.loads(daemon.run_cli("gc", "--dry-run", "--json").stdout)
    assert dry["dry_run"] and {i["reason"] for i in dry["removed"]} == {"partial", "untracked"}
    assert partial.exists() and untracked.exists()
    assert dry["freed_bytes"] >= 100_000

    report = daemon.run_cli("gc")
    assert report.returncode == 0 and "deleted 2 env(s)" in report.stdout, report.stdout
    assert not partial.exists() and not untracked.exists()
    assert Path(leased.venv_path).exists()

    # Age: make pooled envs expire (live config edit), they are deleted and rebuilt.
    pooled_before = {p for p, e in _envs(daemon).items() if e["state"] == "pooled"}
    daemon.write_config('[backends.uv]\npool_size = 2\nmax_age = "1s"\n[daemon]\ngc_interval_s = 3600\n')
    daemon.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    wait_for(lambda: all(not Path(p).exists() for p in pooled_before) if daemon.run_cli("gc").returncode == 0
             else False, timeout=30, what="aged envs to be collected")  # fmt: skip
    assert Path(leased.venv_path).exists()  # leased: never aged out


def test_take_never_races_the_sweep(daemon_factory: type[DaemonProcess], tmp_path: Path) -> None:
    """Envs expire almost at once and sweeps run constantly while clients take:
    every env handed out must still exist, complete, with its lease."""
    site = install_plugin(tmp_path / "site", "toy", toy_backend("toy"))
    daemon = daemon_factory(
        config="[backends.uv]\npool_size = 0\n[backends.toy]\npool_size = 6\nconcurrency = 3\nmax_age = 0.2\n"
        "[daemon]\ngc_interval_s = 0.05\n",
        env={"PYTHONPATH": str(site)},
    ).start()
    daemon.wait_pool("toy", 3, timeout=30)
    taken: list[str] = []
    errors: list[str] = []

    def client() -> None:
        with daemon.client() as c:
            for _ in range(15):
                env = c.take("toy", wait_s=10)
                if env is None:
                    continue
                path = Path(env.venv_path)
                if not (path / ".runtimed" / "manifest.json").exists() or read_lease(path) is None:
                    errors.append(f"{path} handed out but incomplete or unleased")
                taken.append(env.venv_path)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert len(taken) > 20 and len(taken) == len(set(taken)), "an env was handed out twice"
    assert all(Path(p).exists() for p in taken)  # holders (this process) alive: nothing collected


def test_live_config_resizes_and_bad_edit_keeps_previous(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\n" + FAST_HOUSEKEEPING).start()
    daemon.wait_pool("uv", 1)
    daemon.write_config("[backends.uv]\npool_size = 2\n" + FAST_HOUSEKEEPING)
    status = daemon.wait_pool("uv", 2)  # picked up from the file, no signal
    assert status.pools["uv"].target == 2

    daemon.write_config("[backends.uv]\npool_size = 'many'\n" + FAST_HOUSEKEEPING)
    error = wait_for(lambda: daemon.status().daemon.config_error, timeout=10, what="config error in status")
    assert "pool_size" in error and str(daemon.config_file) in error
    assert daemon.status().pools["uv"].target == 2  # the previous config stays in force
    assert "config error" in daemon.run_cli("status").stdout

    daemon.write_config("[backends.uv]\npool_size = 0\n" + FAST_HOUSEKEEPING)
    status = wait_for(lambda: (s := daemon.status()).pools["uv"].target == 0 and s, timeout=10, what="shrink")
    assert status.daemon.config_error is None
    wait_for(lambda: daemon.status().pools["uv"].available == 0, timeout=10, what="surplus deleted")
    wait_for(lambda: not any((daemon.cache_dir / "envs").iterdir()), timeout=10, what="envs deleted from disk")


def test_changed_packages_retire_old_envs_gracefully(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\n").start()
    daemon.wait_pool("uv", 1)
    old = next(iter(_envs(daemon)))
    daemon.write_config('[backends.uv]\npool_size = 1\npackages = ["six"]\n')
    os.kill(daemon.proc.pid, signal.SIGHUP)  # type: ignore[union-attr]
    # Until the replacement is ready the old env still serves as a fallback...
    wait_for(lambda: daemon.status().pools["uv"].outdated == 1, timeout=10, what="old env marked outdated")
    # ... then it is replaced and deleted.
    daemon.wait_pool("uv", 1)
    wait_for(lambda: not Path(old).exists(), timeout=30, what="old env deleted")
    with daemon.client() as c:
        env = c.take("uv")
    assert env is not None and any(p.startswith("six==") for p in env.packages)


def test_take_wait_and_flush_from_the_cli(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 1\n").start()
    result = daemon.run_cli("take", "uv", "--wait", "120", "--json", timeout=180)  # nothing ready yet
    assert result.returncode == 0, result.stderr
    assert Path(json.loads(result.stdout)["python_path"]).exists()
    pooled = daemon.wait_pool("uv", 1)
    assert pooled.pools["uv"].disk_bytes
    before = {p for p, e in _envs(daemon).items() if e["state"] == "pooled"}
    flushed = daemon.run_cli("flush", "uv")
    assert flushed.returncode == 0 and "flushed 1 env(s)" in flushed.stdout
    assert not any(Path(p).exists() for p in before)
    daemon.wait_pool("uv", 1)
