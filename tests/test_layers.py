"""The architecture as a contract: layers import only downward (import-linter, configured
in pyproject.toml), and a plugin imports nothing of runtimed but the plugin API."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    assert LINT_IMPORTS, "import-linter is a test dependency"
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_layer_contracts_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "message"),
    [
        ("core/pool.py", "import runtimed.daemon.supervisor", "runtimed.core is not allowed to import runtimed.daemon"),
        ("envs/envdir.py", "import runtimed.workers.handle", "runtimed.envs is not allowed to import runtimed.workers"),
        ("daemon/server.py", "import runtimed.client.api", "runtimed.daemon.server -> runtimed.client.api"),
        (
            "deps/spec.py",
            "import runtimed.protocol.messages",
            "runtimed.deps is not allowed to import runtimed.protocol",
        ),
        ("config.py", "import runtimed.deps.spec", "runtimed.config is not allowed to import runtimed.deps"),
        ("envscripts/kernel_host.py", "import runtimed.util.files", "runtimed.envscripts.kernel_host -> runtimed.util"),
    ],
)
def test_a_layer_broken_on_purpose_is_caught(tmp_path: Path, module: str, bad_import: str, message: str) -> None:
    shutil.copytree(ROOT / "runtimed", tmp_path / "runtimed", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "runtimed" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{bad_import}  # noqa\n", encoding="utf-8")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert message in result.stdout, result.stdout


def _runtimed_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        else:
            continue
        found |= {n for n in names if n == "runtimed" or n.startswith("runtimed.")}
    return found


PLUGIN_SOURCES = sorted(
    p for d in ("plugins", "examples") for p in (ROOT / d).rglob("*.py") if "tests" not in p.relative_to(ROOT).parts[2:]
)


def test_plugins_import_only_the_plugin_api() -> None:
    assert len(PLUGIN_SOURCES) > 5  # the uv, conda and pixi plugins are all here
    allowed = {"runtimed.backend"}
    offenders = {
        str(p.relative_to(ROOT)): sorted(bad)
        for p in PLUGIN_SOURCES
        if p.name != "client_example.py" and (bad := _runtimed_imports(p) - allowed)
    }
    assert not offenders, f"plugins must import only runtimed.backend: {offenders}"
