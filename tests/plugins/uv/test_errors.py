"""Classifying uv's real error messages (captured from uv 0.13)."""

from __future__ import annotations

import pytest

from runtimed_uv.errors import classify_uv_error

NOT_FOUND = """Using Python 3.11.7 environment at: tv
error: No solution found when resolving dependencies
  cause: Because rt-no-such-pkg-xyz was not found in the package registry and you require rt-no-such-pkg-xyz, \
we can conclude that your requirements are unsatisfiable."""
NO_VERSION = """error: No solution found when resolving dependencies
  cause: Because there is no version of ipykernel==999 and you require ipykernel==999, we can conclude that your \
requirements are unsatisfiable."""
CONNECT = """error: Request failed after 3 retries in 8.8s
  cause: Failed to fetch: http://127.0.0.1:9/simple/six/
  cause: error sending request for url (http://127.0.0.1:9/simple/six/)
  cause: tcp connect error
  cause: Connection refused (os error 111)"""
OFFLINE_MISS = """error: No solution found when resolving dependencies
  cause: Because ipykernel was not found in the cache and you require ipykernel, we can conclude that your \
requirements are unsatisfiable.

hint: Packages were unavailable because the network was disabled. When the network is disabled, registry packages \
may only be read from the cache."""
BAD_SPEC = """error: Failed to parse: `not a valid spec!!`
  cause: Expected one of `@`, `(`, `<`, `=`, `>`, `~`, `!`, `;`, found `a`"""
NO_PYTHON = "error: No interpreter found for Python 3.99 in managed installations or search path"


@pytest.mark.parametrize(
    ("output", "kind", "package"),
    [
        (NOT_FOUND, "invalid_package", "rt-no-such-pkg-xyz"),
        (NO_VERSION, "invalid_package", "ipykernel"),
        (CONNECT, "network", None),
        (OFFLINE_MISS, "network", None),
        (BAD_SPEC, "invalid_package", "not a valid spec!!"),
        (NO_PYTHON, "tool_missing", None),
        ("error: something else entirely", "setup_failed", None),
    ],
)
def test_classification(output: str, kind: str, package: str | None) -> None:
    error = classify_uv_error(output, 1)
    assert (error.kind, error.package) == (kind, package)
    assert "exit 1" in error.message and output.strip().splitlines()[-1][:40] in error.message
