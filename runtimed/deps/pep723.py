"""The PEP 723 ``# /// script`` block at the top of a notebook's first code cell (juv, uvnb)."""

from __future__ import annotations

import re
from typing import Any

from attrs import frozen

from runtimed.config import tomllib

__all__ = ["ScriptBlock", "find_script_block", "parse_script_block"]

# The reference regex of PEP 723.
_BLOCK = re.compile(r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$")


@frozen
class ScriptBlock:
    """What a ``script`` block declares."""

    dependencies: tuple[str, ...]
    requires_python: str | None
    tool_uv: dict[str, Any]


def find_script_block(source: str) -> str | None:
    """The TOML of the one ``script`` block in ``source``, or None. ValueError if there
    are several (PEP 723: an error)."""
    blocks = [m for m in _BLOCK.finditer(source) if m["type"] == "script"]
    if len(blocks) > 1:
        raise ValueError("more than one '# /// script' block")
    if not blocks:
        return None
    lines = blocks[0]["content"].splitlines(keepends=True)
    return "".join(line[2:] if line.startswith("# ") else line[1:] for line in lines)


def parse_script_block(source: str) -> ScriptBlock | None:
    """The block's fields, or None without a block. ValueError for invalid TOML or
    fields of the wrong type."""
    text = find_script_block(source)
    if text is None:
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"invalid TOML in the '# /// script' block: {exc}") from None
    deps = data.get("dependencies", [])
    python = data.get("requires-python")
    tool_uv = data.get("tool", {}).get("uv", {}) if isinstance(data.get("tool", {}), dict) else None
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ValueError("'dependencies' in the '# /// script' block must be a list of strings")
    if python is not None and not isinstance(python, str):
        raise ValueError("'requires-python' in the '# /// script' block must be a string")
    if not isinstance(tool_uv, dict):
        raise ValueError("[tool.uv] in the '# /// script' block must be a table")
    return ScriptBlock(dependencies=tuple(deps), requires_python=python, tool_uv=tool_uv)
