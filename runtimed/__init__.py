"""runtimed: a per-user daemon that keeps pools of prewarmed Python environments."""

from __future__ import annotations

__version__ = "0.1.0"

from runtimed.client import Client, DaemonNotRunning, take_env, try_get_pooled_env
from runtimed.protocol import PooledEnv

__all__ = ["Client", "DaemonNotRunning", "PooledEnv", "__version__", "take_env", "try_get_pooled_env"]
