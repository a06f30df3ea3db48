"""runtimed: a per-user daemon that keeps pools of prewarmed Python environments."""

from __future__ import annotations

__version__ = "0.1.0"

from runtimed.client import Client, DaemonNotRunning, take_env, try_get_pooled_env  # noqa: E402
from runtimed.protocol import PooledEnv  # noqa: E402

__all__ = ["__version__", "Client", "DaemonNotRunning", "PooledEnv", "take_env", "try_get_pooled_env"]
