"""The Python client: talk to the daemon (:mod:`.api`), start it when none runs
(:mod:`.autostart`), and build an env in-process when no daemon answers."""

from runtimed.client.api import (
    Client,
    DaemonAbsent,
    DaemonError,
    DaemonNotResponding,
    DaemonNotRunning,
    DaemonUntrusted,
    build_in_process,
    take_env,
    try_get_pooled_env,
)

__all__ = [
    "Client",
    "DaemonAbsent",
    "DaemonError",
    "DaemonNotResponding",
    "DaemonNotRunning",
    "DaemonUntrusted",
    "build_in_process",
    "take_env",
    "try_get_pooled_env",
]
