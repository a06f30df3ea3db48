"""The trust store: approvals keyed by an HMAC with this store's secret, the allowlist,
a private file written atomically, and the setting that turns the check off."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import stat
from pathlib import Path

import pytest

from runtimed.config import ConfigError, parse_config
from runtimed.deps import Backend, DependencySpec, TrustStore, TrustStoreError, default_trust_file

SPEC = DependencySpec.create(Backend.UV, ["httpx", "six"], python=">=3.11")


@pytest.fixture
def store(tmp_path: Path) -> TrustStore:
    return TrustStore(tmp_path / "conf" / "trust.json")


def test_nothing_is_trusted_at_first(store: TrustStore) -> None:
    assert not store.is_trusted(SPEC)
    assert not store.path.exists()  # reading creates nothing


def test_an_approved_spec_is_trusted_and_listed(store: TrustStore, tmp_path: Path) -> None:
    approval = store.approve(SPEC, tmp_path / "a.ipynb")
    assert store.is_trusted(SPEC)
    assert store.is_trusted(DependencySpec.create(Backend.UV, ["SIX", "httpx"], python=">=3.11"))
    assert [(a.key, a.notebook) for a in store.approved()] == [(SPEC.key, str(tmp_path / "a.ipynb"))]
    assert approval.summary == "uv: httpx, six (python >=3.11)"


@pytest.mark.parametrize(
    "edited",
    [
        DependencySpec.create(Backend.UV, ["httpx", "six", "attrs"], python=">=3.11"),
        DependencySpec.create(Backend.UV, ["httpx", "six"], python=">=3.11", pins=["six==1.16.0"]),
        DependencySpec.create(Backend.UV, ["httpx", "six"], python=">=3.11", uv_options={"index-url": "http://x"}),
    ],
)
def test_changed_dependencies_are_untrusted_again(store: TrustStore, edited: DependencySpec) -> None:
    store.approve(SPEC)
    assert not store.is_trusted(edited)


def test_revoke_by_spec_and_by_key_prefix(store: TrustStore) -> None:
    other = DependencySpec.create(Backend.UV, ["attrs"])
    store.approve(SPEC)
    store.approve(other)
    assert [a.key for a in store.revoke(SPEC)] == [SPEC.key]
    assert not store.is_trusted(SPEC)
    assert store.revoke(SPEC) == []
    assert store.revoke("") == []
    assert [a.key for a in store.revoke(other.key[:8].upper())] == [other.key]
    assert not store.is_trusted(other)
    assert store.approved() == []


def test_the_store_is_private_and_written_atomically(store: TrustStore) -> None:
    store.approve(SPEC)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert sorted(p.name for p in store.path.parent.iterdir()) == [".trust.json.lock", "trust.json"]  # no temp file
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700


def test_an_entry_from_another_store_trusts_nothing(tmp_path: Path) -> None:
    """Approvals are HMACs with this store's own secret: copying an entry from another
    user's store, or writing one by hand with the spec's key, trusts nothing."""
    theirs = TrustStore(tmp_path / "theirs.json")
    theirs.approve(SPEC)
    mine = TrustStore(tmp_path / "mine.json")
    mine.allow_package("unrelated")  # creates my store, with my secret
    data = json.loads(mine.path.read_text())
    data["approved"] = json.loads(theirs.path.read_text())["approved"]
    data["approved"]["by-hand"] = {"key": SPEC.key}
    mine.path.write_text(json.dumps(data))
    assert theirs.is_trusted(SPEC)
    assert not mine.is_trusted(SPEC)
    assert mine.approved() == []


def test_a_damaged_store_is_an_error_naming_the_file(store: TrustStore) -> None:
    store.path.parent.mkdir()
    store.path.write_text("{")
    with pytest.raises(TrustStoreError, match=str(store.path)):
        store.is_trusted(SPEC)


def test_all_packages_allowed_means_trusted(store: TrustStore) -> None:
    store.allow_package("HTTPX")
    assert not store.is_trusted(SPEC)
    assert store.allow_package("Six") == "six"
    assert store.is_trusted(SPEC)
    assert store.allowed_packages() == ["httpx", "six"]
    assert store.disallow_package("six")
    assert not store.is_trusted(SPEC)


@pytest.mark.parametrize(
    ("spec", "trusted"),
    [
        (DependencySpec.create(Backend.UV, ["six", "httpx"], pins=["six==1.17.0", "httpx==0.28.1"]), True),
        (DependencySpec.create(Backend.UV, ["six", "httpx"], pins=["six==1.17.0", "h11==0.16.0"]), False),
        (DependencySpec.create(Backend.UV, ["six", "httpx @ https://evil.example/httpx.whl"]), False),
        (DependencySpec.create(Backend.UV, ["six"], uv_options={"exclude-newer": "2025-01-01T00:00:00Z"}), True),
        (DependencySpec.create(Backend.UV, ["six"], uv_options={"index-url": "https://evil.example"}), False),
        (DependencySpec.create(Backend.CONDA, ["six"], channels=["conda-forge"]), True),
        (DependencySpec.create(Backend.CONDA, ["six"], channels=["https://evil.example/channel"]), False),
        (DependencySpec.create(Backend.CONDA, ["evil::six"]), False),
    ],
)
def test_the_allowlist_covers_lock_pins_and_only_the_usual_sources(
    store: TrustStore, spec: DependencySpec, trusted: bool
) -> None:
    store.allow_package("six")
    store.allow_package("httpx")
    assert store.is_trusted(spec) is trusted


def test_turned_off_everything_is_trusted(tmp_path: Path) -> None:
    assert TrustStore(tmp_path / "trust.json", enabled=False).is_trusted(SPEC)
    assert not TrustStore.from_config(parse_config({}), tmp_path / "trust.json").is_trusted(SPEC)
    off = parse_config({"daemon": {"trust_notebooks": False}})
    assert TrustStore.from_config(off, tmp_path / "trust.json").is_trusted(SPEC)


def test_the_setting_is_validated() -> None:
    with pytest.raises(ConfigError, match="trust_notebooks"):
        parse_config({"daemon": {"trust_notebooks": "sometimes"}})


def test_the_store_lives_beside_the_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RUNTIMED_TRUST_FILE", raising=False)
    monkeypatch.setenv("RUNTIMED_CONFIG", str(tmp_path / "cfg" / "config.toml"))
    assert default_trust_file() == tmp_path / "cfg" / "trust.json"
    monkeypatch.setenv("RUNTIMED_TRUST_FILE", str(tmp_path / "t.json"))
    assert default_trust_file() == tmp_path / "t.json"


def _approve_many(path: Path, worker: int) -> None:
    store = TrustStore(path)
    for i in range(5):
        store.approve(DependencySpec.create(Backend.UV, [f"pkg{worker}-{i}"]))


def test_concurrent_approvals_are_all_kept(tmp_path: Path) -> None:
    """Each change is read-modify-write of the whole file: under the store's lock, so
    several ``runtimed trust`` at once lose nothing."""
    path = tmp_path / "trust.json"
    TrustStore(path).allow_package("six")  # the secret exists before the race
    with concurrent.futures.ProcessPoolExecutor(8, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_approve_many, [path] * 8, range(8)))
    assert len(TrustStore(path).approved()) == 40
