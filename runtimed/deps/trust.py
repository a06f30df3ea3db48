"""Which dependency sets this user approved for installing (installing runs code).

A per-user JSON store (0600, written atomically) in runtimed's config dir, beside
``config.toml`` (``$RUNTIMED_TRUST_FILE`` overrides the path). Approvals are keyed by
an HMAC of the spec's :attr:`~runtimed.deps.spec.DependencySpec.key` with a secret
made for this store: a hand-written entry or one from another store matches nothing.

A spec is trusted when its key was approved, or when every package it declares and
every package its lock pins is in the allowlist (``runtimed trust --package``), none
is a direct reference (``name @ URL``), its ``[tool.uv]`` sets nothing but
:data:`ALLOWLIST_UV_OPTIONS` (an index or a source could serve any code under an
allowed name) and its conda channels are among :data:`ALLOWLIST_CHANNELS`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from attrs import frozen

from runtimed.config import DEFAULT_CHANNELS, Config
from runtimed.deps.spec import DependencySpec, canonical_name, has_direct_reference
from runtimed.util.files import now_iso, write_durably
from runtimed.util.paths import Paths

__all__ = [
    "ALLOWLIST_CHANNELS",
    "ALLOWLIST_UV_OPTIONS",
    "TRUST_FILE_ENV",
    "Approval",
    "TrustStore",
    "TrustStoreError",
    "default_trust_file",
]

TRUST_FILE_ENV = "RUNTIMED_TRUST_FILE"
ALLOWLIST_UV_OPTIONS = frozenset({"exclude-newer", "prerelease", "resolution"})
ALLOWLIST_CHANNELS = frozenset(DEFAULT_CHANNELS)
_VERSION = 1


class TrustStoreError(OSError):
    """The store cannot be read or written (the message says which file and why)."""


def default_trust_file(environ: dict[str, str] | None = None) -> Path:
    """``$RUNTIMED_TRUST_FILE``, else ``trust.json`` beside runtimed's config file."""
    env = os.environ if environ is None else environ
    override = env.get(TRUST_FILE_ENV)
    if override:
        return Path(override).absolute()
    return Paths.resolve().config_file.parent / "trust.json"


@frozen
class Approval:
    """One approved dependency set, as ``runtimed trust --list`` shows it."""

    key: str
    summary: str
    notebook: str | None
    approved_at: str


class TrustStore:
    """The approvals and the allowlist in ``path``; ``enabled=False`` (``[daemon]
    trust_notebooks = false``) trusts everything."""

    def __init__(self, path: Path | None = None, *, enabled: bool = True) -> None:
        self.path = path or default_trust_file()
        self.enabled = enabled

    @classmethod
    def from_config(cls, config: Config, path: Path | None = None) -> TrustStore:
        """The user's store, checked unless ``[daemon] trust_notebooks = false``."""
        return cls(path, enabled=config.daemon.trust_notebooks)

    def is_trusted(self, spec: DependencySpec) -> bool:
        if not self.enabled:
            return True
        data = self._read()
        return self._mac(data, spec.key) in data["approved"] or _allowlisted(spec, set(data["packages"]))

    def is_trusted_key(self, key: str) -> bool:
        """Whether the set named ``key`` was approved (a project's: no allowlist applies)."""
        if not self.enabled:
            return True
        data = self._read()
        return self._mac(data, key) in data["approved"]

    def approve(self, spec: DependencySpec, notebook: Path | None = None) -> Approval:
        return self.approve_key(spec.key, spec.describe(), notebook)

    def approve_key(self, key: str, summary: str, origin: Path | None = None) -> Approval:
        """Approve the set named ``key`` (a notebook's spec key, a project's key)."""
        approval = Approval(key, summary, str(origin) if origin else None, now_iso())
        with self._editing() as data:
            data["approved"][self._mac(data, key)] = {
                "key": approval.key,
                "summary": approval.summary,
                "notebook": approval.notebook,
                "approved_at": approval.approved_at,
            }
        return approval

    def revoke(self, key_or_spec: str | DependencySpec) -> list[Approval]:
        """Forget approvals: of a spec, or whose key starts with a (hex) prefix; the ones removed."""
        with self._editing() as data:
            if isinstance(key_or_spec, DependencySpec):
                macs = [self._mac(data, key_or_spec.key)]
            else:
                prefix = key_or_spec.strip().lower()
                macs = [m for m, e in data["approved"].items() if prefix and str(e.get("key", "")).startswith(prefix)]
            return [_approval(data["approved"].pop(m)) for m in macs if m in data["approved"]]

    def allow_package(self, name: str) -> str:
        """Add a package name to the allowlist; its canonical form."""
        canonical = canonical_name(name.strip())
        if not canonical:
            raise ValueError("an empty package name")
        with self._editing() as data:
            data["packages"] = sorted({*data["packages"], canonical})
        return canonical

    def disallow_package(self, name: str) -> bool:
        canonical = canonical_name(name.strip())
        with self._editing() as data:
            if canonical not in data["packages"]:
                return False
            data["packages"] = [p for p in data["packages"] if p != canonical]
        return True

    def approved(self) -> list[Approval]:
        """Every valid approval, oldest first (entries not made with this store's secret are left out)."""
        data = self._read()
        found = [_approval(e) for m, e in data["approved"].items() if m == self._mac(data, str(e.get("key", "")))]
        return sorted(found, key=lambda a: a.approved_at)

    def allowed_packages(self) -> list[str]:
        return list(self._read()["packages"])

    @staticmethod
    def _mac(data: dict[str, Any], key: str) -> str:
        return hmac.new(bytes.fromhex(data["secret"]), key.encode(), hashlib.sha256).hexdigest()

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"version": _VERSION, "secret": secrets.token_hex(32), "approved": {}, "packages": []}
        except OSError as exc:
            raise TrustStoreError(f"cannot read the trust store {self.path}: {exc.strerror or exc}") from None
        try:
            return _checked(json.loads(text))
        except (ValueError, TypeError, KeyError) as exc:
            raise TrustStoreError(f"the trust store {self.path} is damaged ({exc}); delete it to start over") from None

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        """The store's data to change in place, written back (if changed) under an
        exclusive lock: concurrent ``runtimed trust`` commands lose no approval."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise TrustStoreError(f"cannot lock the trust store {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = self._read()
            before = json.dumps(data, sort_keys=True)
            yield data
            if json.dumps(data, sort_keys=True) != before:
                self._write(data)
        finally:
            os.close(fd)

    def _write(self, data: dict[str, Any]) -> None:
        blob = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
        try:
            write_durably(self.path, blob, prepared=_private_temp(self.path))
        except OSError as exc:
            raise TrustStoreError(f"cannot write the trust store {self.path}: {exc.strerror or exc}") from None


def _private_temp(path: Path) -> Path:
    """An empty 0600 temp file beside ``path`` for :func:`write_durably` to fill and rename."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
    return temp


def _checked(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("version") != _VERSION:
        raise ValueError("not a version-1 trust store")
    bytes.fromhex(data["secret"])
    if len(data["secret"]) < 32 or not isinstance(data["approved"], dict) or not isinstance(data["packages"], list):
        raise ValueError("missing fields")
    return data


def _approval(entry: dict[str, Any]) -> Approval:
    return Approval(
        key=str(entry.get("key", "")),
        summary=str(entry.get("summary", "")),
        notebook=entry.get("notebook") if isinstance(entry.get("notebook"), str) else None,
        approved_at=str(entry.get("approved_at", "")),
    )


def _allowlisted(spec: DependencySpec, allowed: set[str]) -> bool:
    if not spec.packages or any(has_direct_reference(p) or "::" in p for p in spec.packages):
        return False
    if {k for k, _ in spec.uv_options} - ALLOWLIST_UV_OPTIONS:
        return False
    if not set(spec.channels) <= ALLOWLIST_CHANNELS:
        return False
    return set(spec.names) <= allowed and set(spec.pinned_names) <= allowed
