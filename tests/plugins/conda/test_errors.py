"""Classification of py-rattler's error texts (collected from real runs) into runtimed's kinds."""

from __future__ import annotations

import pytest
from rattler.exceptions import GatewayError, InstallerError, InvalidMatchSpecError, SolverError

from runtimed.backend import BackendError, ErrorKind
from runtimed_conda.errors import classify_error, classify_text, failing_url, is_not_modified, missing_package

NEEDS_MISSING = (
    "Cannot solve the request because of: rt-needs-missing * cannot be installed because there are no viable "
    "options:\n└─ rt-needs-missing 1.0.0 would require\n   └─ rt-does-not-exist *, for which no candidates were "
    "found.\n"
)
UNKNOWN = "Cannot solve the request because of: No candidates were found for totally-unknown-pkg *.\n"
NO_SUCH_VERSION = "Cannot solve the request because of: No candidates were found for python 9.9.*.\n"
REFUSED = (
    "error sending request for url (http://127.0.0.1:9/linux-64/repodata_shards.msgpack.zst)\n"
    "Caused by: client error (Connect)\nCaused by: tcp connect error\nCaused by: Connection refused (os error 111)"
)
# What conda-forge looks like from a machine without DNS/network.
CONDA_FORGE_DNS = (
    "error sending request for url (https://conda.anaconda.org/conda-forge/noarch/repodata_shards.msgpack.zst)\n"
    "Caused by: client error (Connect)\nCaused by: dns error\nCaused by: error resolving DNS\n"
    "Caused by: failed to lookup address information: Name or service not known"
)
SERVER_GONE_MID_INSTALL = (
    "failed to fetch rt-hello-1.0.0-0.conda\nCaused by: failed to interact with the package cache layer.\n"
    "Caused by: error sending request for url (http://127.0.0.1:45841/noarch/rt-hello-1.0.0-0.conda)\n"
    "Caused by: client error (Connect)\nCaused by: tcp connect error\nCaused by: Connection refused (os error 111)"
)
MISSING_DIR_CHANNEL = (
    "could not find subdir 'noarch' in channel 'file:///nonexistent/chan/'\n"
    "Caused by: failed to open file `/nonexistent/chan/noarch/repodata.json`: No such file or directory (os error 2)"
)
HTTP_404_CHANNEL = (
    "could not find subdir 'noarch' in channel 'http://127.0.0.1:45841/nope/'\n"
    "Caused by: HTTP status client error (404 File not found) for url (http://127.0.0.1:45841/nope/noarch/repodata.json)"
)


def test_missing_dependency_names_the_deepest_missing_package() -> None:
    error = classify_error(SolverError(NEEDS_MISSING))
    assert error.kind == ErrorKind.INVALID_PACKAGE
    assert error.package == "rt-does-not-exist"
    assert NEEDS_MISSING.strip() in error.message  # the solver's own explanation is kept


@pytest.mark.parametrize(
    ("text", "package"),
    [
        (UNKNOWN, "totally-unknown-pkg"),
        (NO_SUCH_VERSION, "python"),
        ("Cannot solve the request because of: No candidates were found for ipykernel >=99.\n", "ipykernel"),
        (
            "Cannot solve the request because of: No candidates were found for backports.zoneinfo.\n",
            "backports.zoneinfo",
        ),
        (
            "Cannot solve the request because of: foo >=1,<2 cannot be installed because there are no viable options:\n"
            "└─ foo 1.5 would require\n   └─ bar >=1,<2, for which no candidates were found.\n",
            "bar",
        ),
        (
            "Cannot solve the request because of: ipykernel * cannot be installed because there are no viable "
            "options:\n└─ ipykernel 7.4.0 would require\n   └─ python >=3.12, which conflicts with any installable "
            "versions previously reported\n",
            "ipykernel",
        ),
    ],
)
def test_unsolvable_requests_name_the_package(text: str, package: str) -> None:
    error = classify_text("SolverError", text)
    assert (error.kind, error.package) == (ErrorKind.INVALID_PACKAGE, package)
    assert missing_package(text) == package


@pytest.mark.parametrize(
    ("exc", "url"),
    [
        (GatewayError(REFUSED), "http://127.0.0.1:9/linux-64/repodata_shards.msgpack.zst"),
        (GatewayError(CONDA_FORGE_DNS), "https://conda.anaconda.org/conda-forge/noarch/repodata_shards.msgpack.zst"),
        (InstallerError(SERVER_GONE_MID_INSTALL), "http://127.0.0.1:45841/noarch/rt-hello-1.0.0-0.conda"),
    ],
)
def test_unreachable_channels_are_network_errors_naming_the_url(exc: Exception, url: str) -> None:
    error = classify_error(exc)
    assert error.kind == ErrorKind.NETWORK
    assert error.package is None
    assert f"cannot reach {url}:" in error.message.splitlines()[0]
    assert str(exc) in error.message  # the whole cause chain, for the log


def test_root_cause_is_on_the_first_line() -> None:
    first = classify_error(GatewayError(CONDA_FORGE_DNS)).message.splitlines()[0]
    assert first.endswith("failed to lookup address information: Name or service not known")
    assert classify_error(GatewayError(REFUSED)).message.splitlines()[0].endswith("Connection refused (os error 111)")


@pytest.mark.parametrize("text", [MISSING_DIR_CHANNEL, HTTP_404_CHANNEL])
def test_a_channel_that_is_not_there_is_a_setup_failure(text: str) -> None:
    error = classify_error(GatewayError(text))
    assert error.kind == ErrorKind.SETUP_FAILED
    assert "is not a conda channel" in error.message


def test_unparsable_spec_is_invalid_package() -> None:
    error = classify_error(InvalidMatchSpecError("unable to parse version spec: >>1"))
    assert error.kind == ErrorKind.INVALID_PACKAGE


def test_anything_else_is_setup_failed_with_its_type() -> None:
    error = classify_error(OSError(28, "No space left on device"))
    assert error.kind == ErrorKind.SETUP_FAILED
    assert error.message.startswith("OSError: ")


def test_backend_errors_pass_through() -> None:
    original = BackendError(ErrorKind.TIMEOUT, "slow")
    assert classify_error(original) is original


def test_failing_url() -> None:
    assert failing_url(REFUSED) == "http://127.0.0.1:9/linux-64/repodata_shards.msgpack.zst"
    assert failing_url(MISSING_DIR_CHANNEL) == "file:///nonexistent/chan/"
    assert failing_url("something else") is None


def test_not_modified_is_recognised() -> None:
    text = (
        "received unexpected status code (304 Not Modified) when fetching "
        "http://127.0.0.1:45945/noarch/repodata_shards.msgpack.zst.\n\nBody:\n"
    )
    assert is_not_modified(text)
    assert not is_not_modified(REFUSED)
