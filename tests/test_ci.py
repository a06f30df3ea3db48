"""CI runs the test suite as a user would see file modes (issue 17, item 1): as root,
``.ci/run`` runs the README's test command without root's permission bypass.

``.ci/run`` is run for real with its commands stubbed on ``PATH``: ``id`` says root,
``setpriv`` records its options and runs the command it wraps, ``python`` records
the options it ran under, and the lint and type checkers do nothing.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NO_BYPASS = "--bounding-set=-dac_override,-dac_read_search"

STUBS = {
    "id": 'if [ "$1" = -u ]; then echo 0; else exec /usr/bin/id "$@"; fi\n',
    # setpriv [options] -- command...: record the options, run the command.
    "setpriv": (
        'opts=""\nwhile [ "$#" -gt 0 ] && [ "$1" != -- ]; do opts="$opts $1"; shift; done\n'
        'shift\nexport CI_STUB_SETPRIV="${opts# }"\nexec "$@"\n'
    ),
    "python": 'echo "python $*|${CI_STUB_SETPRIV:-none}" >> "$CI_STUB_LOG"\n',
    "ruff": "exit 0\n",
    "mypy": "exit 0\n",
    "lint-imports": "exit 0\n",
}


def _stub_bin(directory: Path) -> Path:
    directory.mkdir()
    for name, body in STUBS.items():
        path = directory / name
        path.write_text("#!/bin/bash\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return directory


def _python_calls(tmp_path: Path) -> dict[str, str]:
    """Run .ci/run with the stubs; each ``python`` command line -> the setpriv options it ran under."""
    log = tmp_path / "calls.log"
    env = {**os.environ, "PATH": f"{_stub_bin(tmp_path / 'bin')}:/usr/bin:/bin", "CI_STUB_LOG": str(log)}
    env.pop("CI_STUB_SETPRIV", None)
    subprocess.run(["bash", str(ROOT / ".ci" / "run")], env=env, check=True, capture_output=True, timeout=60)
    calls = (line.rsplit("|", 1) for line in log.read_text().splitlines())
    return {command: options for command, options in calls}


def test_ci_runs_the_test_suite_as_root_without_the_permission_bypass(tmp_path: Path) -> None:
    calls = _python_calls(tmp_path)
    assert calls.get("python -m pytest") == NO_BYPASS, calls
