"""The last lines of a tool's output (or a log), for error messages."""

from __future__ import annotations

__all__ = ["TAIL_LINES", "tail"]

TAIL_LINES = 15


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text``, without its leading and trailing blank space."""
    if lines <= 0:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])
