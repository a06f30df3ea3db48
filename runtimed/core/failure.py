"""One failure type: the classified reason a job failed, from the backend to ``status``.

A backend raises :class:`BackendError`; the worker sends its :class:`Failure` over
the pipe; the pool keeps the last one; ``status`` shows it. The kind's values are
the strings on the wire (``tool_missing``, ``network``, ...).
"""

from __future__ import annotations

from attrs import define

from runtimed.core.convert import StrEnum

__all__ = ["BackendError", "ErrorKind", "Failure"]


class ErrorKind(StrEnum):
    """The classes of failure shown in ``status``."""

    TOOL_MISSING = "tool_missing"
    NETWORK = "network"
    INVALID_PACKAGE = "invalid_package"
    TIMEOUT = "timeout"
    SETUP_FAILED = "setup_failed"
    CRASHED = "crashed"  # the worker died mid-job
    UNSUPPORTED = "unsupported"  # the backend cannot do what was asked (e.g. extra packages)


@define(frozen=True)
class Failure:
    """Why something failed, classified; ``package`` names the culprit when known."""

    kind: ErrorKind
    message: str
    package: str | None = None


class BackendError(Exception):
    """A classified failure raised by a backend (or on its behalf)."""

    def __init__(self, kind: ErrorKind | str, message: str, package: str | None = None) -> None:
        super().__init__(message)
        self.kind = ErrorKind(kind)
        self.message = message
        self.package = package

    @classmethod
    def from_failure(cls, failure: Failure) -> BackendError:
        return cls(failure.kind, failure.message, failure.package)

    @property
    def failure(self) -> Failure:
        return Failure(kind=self.kind, message=self.message, package=self.package)

    def __repr__(self) -> str:
        return f"BackendError({self.kind.value!r}, {self.message!r}, package={self.package!r})"
