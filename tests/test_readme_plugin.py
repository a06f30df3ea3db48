"""The README's "Writing a backend plugin" section is exactly right: its imports
exist, its code defines a backend whose name matches the entry point it declares."""

from __future__ import annotations

import re
from pathlib import Path

from runtimed.backend import Backend, ErrorKind
from runtimed.config import BackendConfig

README = Path(__file__).resolve().parents[1] / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Writing a backend plugin")
    return text[start : text.index("\n## ", start + 1)]


def test_the_plugin_example_runs_and_matches_its_entry_point() -> None:
    section = _section()
    toml = re.search(r"```toml\n(.*?)```", section, re.S)
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert toml and code
    entry_point = re.search(r"^(\w+) = ", toml.group(1), re.M)
    assert entry_point is not None
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)
    backend = namespace["runtimed_backend"]()  # type: ignore[operator]
    assert isinstance(backend, Backend) and backend.name == entry_point.group(1)
    assert namespace["ErrorKind"] is ErrorKind and ErrorKind.SETUP_FAILED == "setup_failed"
    assert len(backend.spec_hash(BackendConfig())) == 16
