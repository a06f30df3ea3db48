"""Start a real Jupyter kernel from an env's python and run code in it (jupyter_client)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager, KernelManager


def execute_in_kernel(python: str, code: str, timeout: float = 60.0) -> dict[str, Any]:
    """Start ``python -m ipykernel_launcher``, execute ``code``, return the result data.

    Returns ``{"result": text/plain of the last expression, "startup_s": seconds to
    the kernel's first reply}``; the kernel is always shut down.
    """
    km = KernelManager()
    km._kernel_spec = KernelSpec(  # a spec for this python only, no kernelspec dirs involved
        argv=[python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        display_name="runtimed env",
        language="python",
    )
    started = time.monotonic()
    km.start_kernel()
    try:
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=timeout)
            startup = time.monotonic() - started
            collect = _Collector()
            reply = kc.execute_interactive(code, timeout=timeout, output_hook=collect)
            assert reply["content"]["status"] == "ok", reply["content"]
            return {"result": collect.result, "startup_s": startup}
        finally:
            kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)


class _Collector:
    def __init__(self) -> None:
        self.result: str | None = None

    def __call__(self, msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "execute_result":
            self.result = msg["content"]["data"].get("text/plain")


async def run_code(kc: Any, code: str, timeout: float = 60.0) -> tuple[dict[str, Any], str]:
    """Execute ``code`` with an async kernel client; returns (execute_reply content, stdout)."""
    import asyncio

    msg_id = kc.execute(code)
    out: list[str] = []
    reply: dict[str, Any] | None = None
    idle = False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while reply is None or not idle:
        remaining = deadline - loop.time()
        assert remaining > 0, f"no reply to {code!r} within {timeout}s"
        if reply is None:
            msg = await kc.get_shell_msg(timeout=remaining)
            if msg["parent_header"].get("msg_id") == msg_id:
                reply = msg["content"]
            continue
        msg = await kc.get_iopub_msg(timeout=remaining)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            idle = True
    return reply, "".join(out)


@contextlib.asynccontextmanager
async def running_kernel(
    name: str, *, now: bool = False, manager: dict[str, Any] | None = None, **start: Any
) -> AsyncIterator[tuple[AsyncKernelManager, Any]]:
    """``AsyncKernelManager(kernel_name=name, **manager)`` started with ``start_kernel(**start)``,
    and its client with channels open; both closed (the kernel shut down) at the end."""
    km = AsyncKernelManager(kernel_name=name, **(manager or {}))
    await km.start_kernel(**start)
    kc = km.client()
    kc.start_channels()
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=now)
