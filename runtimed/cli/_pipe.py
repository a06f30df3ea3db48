"""Output into a pipe nobody reads any more (``runtimed stats --json | head -1``).

The CLI then exits quietly with 141, the status a shell shows for ``git log | head -1``
(128 + SIGPIPE): no ``BrokenPipeError`` traceback. Python ignores SIGPIPE, so a write
into a closed pipe raises instead of killing the process; the CLI's entry point
catches it (:func:`closed_output`), points the closed stream at ``/dev/null`` so that
the final flush at exit cannot fail again, and returns :data:`EXIT_SIGPIPE`.
"""

from __future__ import annotations

import os
import select
import signal

__all__ = ["EXIT_SIGPIPE", "closed_output", "silence"]

EXIT_SIGPIPE = 128 + signal.SIGPIPE
STDOUT, STDERR = 1, 2


def _is_closed_pipe(fd: int) -> bool:
    """Is ``fd`` the write end of a pipe (or socket) whose reader has gone?"""
    try:
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        events = poller.poll(0)
    except (OSError, ValueError, AttributeError):
        return False
    return any(mask & (select.POLLERR | select.POLLHUP) for _fd, mask in events)


def closed_output() -> list[int]:
    """Which of stdout and stderr lead into a closed pipe (empty: a BrokenPipeError
    that came from elsewhere, e.g. a socket, is a real error)."""
    return [fd for fd in (STDOUT, STDERR) if _is_closed_pipe(fd)]


def silence(fds: list[int]) -> None:
    """Point ``fds`` at /dev/null: what is still buffered for them goes nowhere, quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            os.dup2(devnull, fd)
    finally:
        os.close(devnull)
