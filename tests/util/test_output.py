"""The last lines of a tool's output, as every error message quotes them."""

from __future__ import annotations

import sys

import pytest

from runtimed.core.failure import BackendError
from runtimed.envs.tools import run_command
from runtimed.util.output import TAIL_LINES, tail


def test_tail_keeps_the_last_lines_without_blank_ends() -> None:
    text = "\n\n" + "\n".join(f"line {i}" for i in range(40)) + "\n\n"
    assert tail(text).splitlines() == [f"line {i}" for i in range(40 - TAIL_LINES, 40)]
    assert tail(text, 2) == "line 38\nline 39"
    assert tail("  one  \n") == "one"
    assert tail("") == "" and tail("a\nb", 0) == ""


def test_a_failing_tool_is_quoted_by_its_tail() -> None:
    script = "import sys\nfor i in range(40): print(f'out {i}', file=sys.stderr)\nsys.exit(3)"
    with pytest.raises(BackendError) as failure:
        run_command([sys.executable, "-c", script], what="the tool")
    message = str(failure.value)
    assert message.startswith("the tool failed (exit 3): ")
    assert message.endswith(tail("\n".join(f"out {i}" for i in range(40))))
    assert "out 24\n" not in message and "out 25\n" in message
