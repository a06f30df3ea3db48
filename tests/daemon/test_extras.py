"""Takes with extra packages (``take --with``), end to end: a real daemon, real uv, real PyPI
packages (small and pure-Python) through the session's uv cache."""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

import pytest

from runtimed.client import DaemonError
from runtimed.protocol.messages import PackageOptions, PooledEnv, WarmSetStatus
from tests.support.daemon import DaemonProcess, wait_for

pytestmark = pytest.mark.slow

CONFIG = "[backends.uv]\npool_size = 1\n"


def _warm_sets(daemon: DaemonProcess) -> list[WarmSetStatus]:
    return daemon.status().pools["uv"].warm_sets


def _wait_ready(daemon: DaemonProcess, packages: list[str]) -> WarmSetStatus:
    """The warm set of ``packages`` once it has an env ready."""

    def ready() -> WarmSetStatus | None:
        found = [s for s in _warm_sets(daemon) if s.packages == packages and s.ready and not s.installing]
        return found[0] if found else None

    return wait_for(ready, timeout=180, what=f"a warm env with {packages}")


def _imports(env: PooledEnv, *modules: str) -> None:
    code = "; ".join(f"import {m}" for m in modules)
    subprocess.run([env.python_path, "-c", code], check=True, timeout=60)


def _take(daemon: DaemonProcess, *packages: str) -> PooledEnv:
    with daemon.client() as client:
        env = client.take("uv", packages=packages)
    assert env is not None
    return env


def test_a_take_with_packages_gets_them_and_the_next_take_hits_the_warm_set(
    daemon_factory: type[DaemonProcess],
) -> None:
    daemon = daemon_factory(config=CONFIG).start()
    daemon.wait_pool("uv", 1)
    env = _take(daemon, "six")
    assert env.extras == ["six"]
    assert any(p.lower().startswith("six==") for p in env.packages)
    _imports(env, "six", "ipykernel", "ipykernel_launcher")
    warm = _wait_ready(daemon, ["six"])  # one more env of the set kept ready
    assert (warm.hits, warm.installs) == (0, 2)
    second = _take(daemon, "Six")  # spelt otherwise: the same set
    assert [second.venv_path] == warm.ready  # the ready env was handed out, not a new install
    _imports(second, "six", "ipykernel")
    after = _wait_ready(daemon, ["six"])
    assert after.hits == 1 and after.installs == 3


def test_concurrent_takes_of_a_new_set_share_one_install_at_a_time(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config="[backends.uv]\npool_size = 2\n").start()
    daemon.wait_pool("uv", 2)
    envs: list[PooledEnv] = []
    threads = [threading.Thread(target=lambda: envs.append(_take(daemon, "idna"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(envs) == 2 and envs[0].venv_path != envs[1].venv_path
    for env in envs:
        _imports(env, "idna")
    _wait_ready(daemon, ["idna"])
    events = re.findall(r"(installing|installed) idna into", daemon.output())
    # Every install of the set ends before the next starts: the takes waited for one.
    assert events == ["installing", "installed"] * 3, events


def test_an_unknown_package_is_a_classified_error_and_leaks_no_env(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=CONFIG).start()
    status = daemon.wait_pool("uv", 1)
    bad = "runtimed-no-such-package-zz9"
    with pytest.raises(DaemonError) as caught:
        _take(daemon, bad)
    assert caught.value.code == "invalid_package"
    assert bad in caught.value.message
    status = daemon.wait_pool("uv", 1)  # the pool builds a new base env
    pool = status.pools["uv"]
    assert pool.leased == 0
    envs = sorted(p.name for p in (daemon.cache_dir / "envs").iterdir() if p.name.startswith("runtimed-"))
    assert len(envs) == 1, envs  # the failed base env was deleted, not kept leased
    with pytest.raises(DaemonError) as again:  # backed off: refused without an install
        _take(daemon, bad)
    assert again.value.code == "invalid_package" and "retried in" in again.value.message
    [warm] = _warm_sets(daemon)
    assert warm.installs == 1 and warm.error is not None and warm.error.package == bad


def test_the_least_recently_used_set_is_evicted_and_deleted(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=CONFIG + "warm_sets = 1\n").start()
    daemon.wait_pool("uv", 1)
    _take(daemon, "six")
    [old] = _wait_ready(daemon, ["six"]).ready
    assert Path(old).is_dir()
    _take(daemon, "text-unidecode")
    _wait_ready(daemon, ["text-unidecode"])
    wait_for(lambda: not Path(old).exists(), timeout=30, what="the evicted env to be deleted")
    assert [s.packages for s in _warm_sets(daemon)] == [["text-unidecode"]]


def test_the_cli_takes_with_packages(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=CONFIG).start()
    daemon.wait_pool("uv", 1)
    proc = daemon.run_cli("take", "uv", "--with", "six", "--keep", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "with: six" in proc.stdout
    bad = daemon.run_cli("take", "uv", "--with", "runtimed-no-such-package-zz9", timeout=300)
    assert bad.returncode == 1
    assert "invalid_package" in bad.stderr and "runtimed-no-such-package-zz9" in bad.stderr
    assert "Traceback" not in bad.stderr
    shown = daemon.run_cli("status")
    assert shown.returncode == 0, shown.stderr
    [row] = [line.split() for line in shown.stdout.splitlines() if line.startswith("uv") and line.endswith(" six")]
    assert row[1] == _warm_sets(daemon)[-1].key  # the set of six, listed with its key


def test_warm_set_envs_are_deleted_by_the_next_daemon(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=CONFIG).start()
    daemon.wait_pool("uv", 1)
    _take(daemon, "six")
    [ready] = _wait_ready(daemon, ["six"]).ready
    daemon.stop()
    daemon.start()
    wait_for(lambda: not Path(ready).exists(), timeout=60, what="the old warm env to be deleted")
    assert _warm_sets(daemon) == []


def test_an_unreachable_index_is_a_network_error(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=CONFIG).start()
    daemon.wait_pool("uv", 1)
    # A direct URL nothing answers on: the offline try misses, the online one cannot connect.
    with pytest.raises(DaemonError) as caught:
        _take(daemon, "rt-unreachable @ http://127.0.0.1:9/rt_unreachable-1.0-py3-none-any.whl")
    assert caught.value.code == "network", caught.value.message
    assert daemon.wait_pool("uv", 1).pools["uv"].leased == 0


def test_flush_and_a_changed_base_drop_the_warm_sets(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=CONFIG).start()
    daemon.wait_pool("uv", 1)
    _take(daemon, "six")
    [first] = _wait_ready(daemon, ["six"]).ready
    with daemon.client() as client:
        assert client.flush("uv") >= 1
    wait_for(lambda: not Path(first).exists(), timeout=30, what="the flushed warm env to be deleted")
    assert _warm_sets(daemon) == []
    daemon.wait_pool("uv", 1)
    _take(daemon, "six")
    [second] = _wait_ready(daemon, ["six"]).ready
    daemon.write_config(CONFIG + 'packages = ["idna"]\n')  # a new base: envs with six on the old one go
    wait_for(lambda: not Path(second).exists(), timeout=60, what="the warm env of the old base to be deleted")
    assert _warm_sets(daemon) == []


def test_requires_python_and_exclude_newer_are_applied(daemon_factory: type[DaemonProcess]) -> None:
    daemon = daemon_factory(config=CONFIG).start()
    daemon.wait_pool("uv", 1)
    with daemon.client() as client:
        old = PackageOptions(requires_python=">=3.8", exclude_newer="2014-12-01T00:00:00Z")
        env = client.take("uv", packages=["six"], options=old)
        assert env is not None
        assert "six==1.8.0" in [p.lower() for p in env.packages]  # the newest six before December 2014
        with pytest.raises(DaemonError) as refused:
            client.take("uv", packages=["six"], options=PackageOptions(requires_python="<3"))
    assert refused.value.code == "unsupported"
    assert "requires-python <3 is not met by the envs' python 3." in str(refused.value)
