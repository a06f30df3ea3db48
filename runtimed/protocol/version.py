"""Does a daemon speak the same version and protocol as this runtimed? (pure)"""

from __future__ import annotations

from runtimed._version import __version__
from runtimed.protocol.messages import PROTOCOL_VERSION

__all__ = ["RESTART_HINT", "mismatch"]

RESTART_HINT = "restart it (`runtimed stop`, then `runtimed run` or `systemctl --user restart runtimed`)"


def mismatch(daemon_version: str, protocol_version: int) -> str | None:
    """A one-line description of how the daemon differs from this runtimed, or None."""
    if daemon_version == __version__ and protocol_version == PROTOCOL_VERSION:
        return None
    return (
        f"the daemon runs runtimed {daemon_version} (protocol {protocol_version}) but this is runtimed "
        f"{__version__} (protocol {PROTOCOL_VERSION})"
    )
