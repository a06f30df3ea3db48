"""Applying a changed ``[backends.<name>]`` section to a running backend.

The supervisor (``runtimed.daemon.supervisor``) calls :func:`reconfigure` for each backend
whose section changed when the config file is reloaded. The pool is resized at
once (surplus envs deleted); a change of the env spec (packages, python...) marks
nothing yet: no build starts until the worker has computed the new spec hash
(``respec``), which then turns the current envs into fallbacks until replaced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from runtimed.config import BackendConfig, config_diff
from runtimed.core.records import ReadyEnv
from runtimed.daemon.runtime import BackendRuntime

__all__ = ["CarryOut", "reconfigure"]

log = logging.getLogger("runtimed.daemon.supervisor")

#: ``carry_out(runtime, envs_to_delete, fill=...)``, as :meth:`runtimed.daemon.builder.Builder.carry_out`.
CarryOut = Callable[..., None]


def reconfigure(
    runtime: BackendRuntime,
    new: BackendConfig,
    carry_out: CarryOut,
    respec: Callable[[BackendRuntime], None],
) -> None:
    """Switch ``runtime`` to ``new``: resize, reset backoff, and re-hash a changed spec."""
    log.info("backend %s reconfigured: %s", runtime.name, config_diff(runtime.config, new))
    spec_changed = new.spec_fields() != runtime.config.spec_fields()
    runtime.config = new
    runtime.pool.concurrency = new.concurrency
    shrunk: Iterable[tuple[ReadyEnv, str]] = [(env, "pool shrank") for env in runtime.pool.resize(new.pool_size)]
    runtime.pool.reset_backoff()
    if spec_changed and runtime.worker.ready is not None:
        # No builds until the new spec hash is known: they would be discarded.
        carry_out(runtime, shrunk, fill=False)
        respec(runtime)
    else:
        carry_out(runtime, shrunk)
