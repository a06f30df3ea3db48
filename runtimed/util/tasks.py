"""Background tasks whose every failure is seen: logged, and passed to a handler;
periodic actions that survive a failing round."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["TaskSet", "every", "run_sync"]

T = TypeVar("T")

log = logging.getLogger("runtimed.daemon.supervisor")


class TaskSet:
    """Keeps its tasks referenced until done and logs any that fail (to ``logger``)."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._log = logger

    def spawn(
        self,
        coro: Coroutine[Any, Any, object],
        name: str | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)

        def done(task: asyncio.Task[Any]) -> None:
            self._tasks.discard(task)
            if task.cancelled() or task.exception() is None:
                return
            exc = task.exception()
            assert exc is not None
            self._log.error("background task %s failed", task.get_name(), exc_info=exc)
            if on_error is not None:
                on_error(exc)

        task.add_done_callback(done)
        return task

    async def stop(self, keep: Callable[[asyncio.Task[Any]], bool] = lambda _t: False) -> None:
        """Cancel every task except those ``keep`` wants finished, then wait for all."""
        for task in list(self._tasks):
            if not keep(task):
                task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def every(interval: Callable[[], float], action: Callable[[], Any], logger: logging.Logger = log) -> None:
    """Run ``action`` (sync or async) every ``interval()`` seconds, forever; a failing
    round is logged (to ``logger``) and the next one runs as usual."""
    while True:
        await asyncio.sleep(interval())
        try:
            result = action()
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            logger.exception("periodic %s failed", getattr(action, "__name__", action))


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, also from a thread that already runs an event
    loop (there, in a thread of its own)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
