"""Configuration: TOML structured into attrs classes, strictly.

Pure apart from :func:`load_config`, which reads the file. An unknown key or a
wrong type is a :class:`ConfigError` naming the key and the file. No file at all
means the defaults, which work out of the box.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Any

import attrs
from attrs import define, field

from runtimed.core.convert import describe_error, make_converter
from runtimed.core.pool import MAX_POOL_SIZE

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = [
    "DEFAULT_CHANNELS",
    "MAX_POOL_SIZE",
    "BackendConfig",
    "Config",
    "ConfigError",
    "DaemonConfig",
    "SupervisionConfig",
    "config_diff",
    "load_config",
    "parse_config",
    "parse_duration",
    "tomllib",
]

DEFAULT_POOL_SIZE = 2
DEFAULT_CHANNELS = ("conda-forge",)


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key (and file)."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


# Bounds that keep every numeric setting meaningful: a period below 10 ms is a busy
# loop, one above a year never fires (and overflows some timers), and counts have a
# ceiling past which the OS or the machine gives out first.
MIN_SECONDS = 0.01
MAX_SECONDS = 365 * 86400.0
MAX_CONCURRENCY = 64
MAX_RESTARTS = 10_000
MAX_CONNECTIONS = 65_536  # also the open-files target; listen() clamps the backlog far below
MIN_MEMORY_LIMIT_MB = 32  # an idle worker alone uses ~25 MiB
MAX_MEMORY_LIMIT_MB = 1024 * 1024  # 1 TiB


def parse_duration(value: float | int | str) -> float:
    """Seconds from a number of seconds or a string like ``"90s"``, ``"12h"``, ``"2d"``.

    Must be finite and within [MIN_SECONDS, MAX_SECONDS] (10 ms to a year)."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"not a duration: {value!r} (use seconds or e.g. '90s', '12h', '2d')")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    _check_seconds(seconds, value)
    return seconds


def _check_seconds(seconds: float, shown: object) -> None:
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a duration must be a positive, finite number of seconds, got {shown!r}")
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ValueError(f"a duration must be between {MIN_SECONDS} s and 365 days, got {shown!r}")


def _pool_size(_inst: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= MAX_POOL_SIZE:
        raise ValueError(f"{attribute.name} must be between 0 and {MAX_POOL_SIZE} (0 disables), got {value}")


def _seconds(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    try:
        _check_seconds(value, value)
    except ValueError as exc:
        raise ValueError(f"{attribute.name}: {exc}") from None


def _count(maximum: int) -> Any:
    """A whole number from 1 to ``maximum``."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: int) -> None:
        if not 1 <= value <= maximum:
            raise ValueError(f"{attribute.name} must be a whole number from 1 to {maximum}, got {value}")

    return check


def _memory_limit(_inst: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and not MIN_MEMORY_LIMIT_MB <= value <= MAX_MEMORY_LIMIT_MB:
        raise ValueError(
            f"{attribute.name} must be from {MIN_MEMORY_LIMIT_MB} to {MAX_MEMORY_LIMIT_MB} MiB "
            f"(leave it out for no limit), got {value}"
        )


def _at_least(minimum: int) -> Any:
    def check(_inst: Any, attribute: attrs.Attribute[int], value: int) -> None:
        if value < minimum:
            raise ValueError(f"{attribute.name} must be at least {minimum}, got {value}")

    return check


def _between(low: int, high: int) -> Any:
    def check(_inst: Any, attribute: attrs.Attribute[int], value: int) -> None:
        if not low <= value <= high:
            raise ValueError(f"{attribute.name} must be between {low} and {high}, got {value}")

    return check


def _duration(_inst: Any, attribute: attrs.Attribute[Any], value: float | str) -> None:
    try:
        parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{attribute.name}: {exc}") from None


@define(frozen=True)
class BackendConfig:
    """Settings of one backend's pool (``[backends.NAME]``)."""

    pool_size: int = field(default=DEFAULT_POOL_SIZE, validator=_pool_size)
    packages: list[str] = field(factory=list)  # added to the backend's base packages
    python: str | None = None  # uv: interpreter/version for `uv venv`; conda: python version
    channels: list[str] = field(factory=lambda: list(DEFAULT_CHANNELS))  # conda
    concurrency: int = field(default=1, validator=_count(MAX_CONCURRENCY))
    max_age: float | str = field(default="2d", validator=_duration)
    build_timeout: float = field(default=900.0, validator=_seconds)  # seconds per create job
    kernels: int | None = field(default=None, validator=attrs.validators.optional(_pool_size))  # pre-started
    # interpreters with ipykernel imported, which start a kernel on the ports a claim
    # gives: restarts (same ports) and kernels with their own arguments
    preimported: int | None = field(default=None, validator=attrs.validators.optional(_pool_size))
    # sets of extra packages (take's ``packages``) kept warm, most recently used first:
    # at most this many sets, and this much disk (MB) for their ready envs
    warm_sets: int = field(default=4, validator=_pool_size)
    warm_sets_mb: int = field(default=2048, validator=attrs.validators.ge(0))

    @property
    def kernel_target(self) -> int:
        """Pre-started kernels to keep: ``kernels``, else 1 when the pool is enabled."""
        if self.kernels is not None:
            return self.kernels
        return 1 if self.pool_size > 0 else 0

    @property
    def preimported_target(self) -> int:
        """Pre-imported interpreters to keep: ``preimported``, else 1 when kernels are pre-started."""
        if self.preimported is not None:
            return self.preimported
        return 1 if self.kernel_target > 0 else 0

    @property
    def max_age_s(self) -> float:
        return parse_duration(self.max_age)

    def spec_fields(self) -> dict[str, Any]:
        """The fields that decide what an env contains (inputs of the spec hash)."""
        return {"packages": list(self.packages), "python": self.python, "channels": list(self.channels)}


@define(frozen=True)
class SupervisionConfig:
    """How workers are supervised (``[supervision]``)."""

    start_grace_s: float = field(default=3.0, validator=_seconds)  # must stay up this long
    restart_base_s: float = field(default=0.5, validator=_seconds)
    restart_cap_s: float = field(default=30.0, validator=_seconds)
    max_restarts: int = field(default=5, validator=_count(MAX_RESTARTS))  # ... within restart_window_s
    restart_window_s: float = field(default=60.0, validator=_seconds)
    failed_cooldown_s: float = field(default=300.0, validator=_seconds)
    memory_limit_mb: int | None = field(default=None, validator=_memory_limit)  # per worker; None = unlimited


@define(frozen=True)
class DaemonConfig:
    """The daemon itself (``[daemon]``)."""

    idle_timeout_s: float = field(default=300.0, validator=_seconds)  # close silent connections
    max_connections: int = field(default=1024, validator=_count(MAX_CONNECTIONS))
    lease_check_s: float = field(default=10.0, validator=_seconds)  # how often lease holders are checked
    gc_interval_s: float = field(default=300.0, validator=_seconds)  # how often the GC sweep runs
    config_poll_s: float = field(default=2.0, validator=_seconds)  # how often the config file is checked
    # runtimed.log rotates at this size, keeping this many old files (read at start-up only).
    log_max_bytes: int = field(default=5 * 1024 * 1024, validator=_at_least(64 * 1024))
    log_backups: int = field(default=3, validator=_between(1, 100))
    # A handed-out kernel whose owner (the KernelManager's process) died is shut down after this.
    kernel_owner_grace_s: float = field(default=10.0, validator=_seconds)
    # How many front ends' start-up environments (PYTHONPATH, JUPYTER_CONFIG_DIR, ...)
    # get pre-started kernels at once: the most recently asked first.
    kernel_variants: int = field(default=1, validator=_between(1, 16))
    # Read by clients, not by the daemon: may the kernel provisioner, `python -m
    # runtimed.kernel` and `runtimed take` start a daemon when none runs (runtimed.client.autostart)?
    auto_start: bool = True
    # Install a notebook's own dependencies only once the user approved them
    # (`runtimed trust`); false trusts every notebook (runtimed.deps.trust).
    trust_notebooks: bool = True


@define(frozen=True)
class Config:
    """The whole daemon configuration."""

    backends: dict[str, BackendConfig] = field(factory=dict)
    supervision: SupervisionConfig = field(factory=SupervisionConfig)
    daemon: DaemonConfig = field(factory=DaemonConfig)

    def backend(self, name: str) -> BackendConfig:
        """The config of backend ``name`` (defaults if the file does not mention it)."""
        return self.backends.get(name) or BackendConfig()

    def with_backend(self, name: str, **changes: Any) -> Config:
        """A copy with fields of one backend's config replaced (CLI overrides)."""
        updated = attrs.evolve(self.backend(name), **changes)
        return attrs.evolve(self, backends={**self.backends, name: updated})


_converter = make_converter(forbid_extra_keys=True)


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Structure already-parsed TOML data into a :class:`Config`."""
    try:
        return _converter.structure(data, Config)
    except Exception as exc:
        raise ConfigError(f"invalid configuration in {source}: {describe_error(exc, path='config')}") from exc


def load_config(path: Path) -> Config:
    """Read ``path``; a missing file means the defaults."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in {path}: {exc}") from exc
    return parse_config(data, str(path))


def config_diff(old: BackendConfig, new: BackendConfig) -> str:
    """``key: old -> new`` for each setting that differs, for the log."""
    a, b = attrs.asdict(old), attrs.asdict(new)
    return ", ".join(f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if a[k] != b[k])
