"""runtimed: a per-user daemon that keeps pools of prewarmed Python environments.

The client's names are imported on first use, so that ``import runtimed.<anything>``
(a worker, the daemon, a launcher) does not pay for the client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtimed._version import __version__

if TYPE_CHECKING:
    from runtimed.client import Client, DaemonNotRunning, take_env, try_get_pooled_env
    from runtimed.protocol.messages import PooledEnv

__all__ = ["Client", "DaemonNotRunning", "PooledEnv", "__version__", "take_env", "try_get_pooled_env"]

_LAZY = {
    "Client": "runtimed.client",
    "DaemonNotRunning": "runtimed.client",
    "take_env": "runtimed.client",
    "try_get_pooled_env": "runtimed.client",
    "PooledEnv": "runtimed.protocol.messages",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'runtimed' has no attribute {name!r}")
