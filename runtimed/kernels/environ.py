"""What a kernel's environment is, and when a pre-started kernel cannot serve a request.

Pure functions. The rule for serving a request from a pre-started kernel: its
kernel arguments must all be ones a running kernel can apply
(:data:`APPLIED_ARGS`), and the variables Python, IPython and Jupyter read only at
start-up (:data:`STARTUP_VARS`) must have the values the pre-started kernel was
started with. A connection the request pins (a restart's, or the ports a front end
chose) is taken over by the kernel on claim. A pre-imported interpreter (the kernel
starts on claim, with the arguments asked) needs only the last. Anything else gets
a normally launched kernel in a pooled env, with those arguments and variables.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping

from attrs import define

from runtimed.protocol.messages import TakeKernel

__all__ = [
    "APPLIED_ARGS",
    "STARTUP_VARS",
    "Refusal",
    "RefusalKind",
    "kernel_environ",
    "refusal",
    "startup_refusal",
]

#: Kernel arguments a pre-started kernel applies on claim (nbclient and papermill pass this one).
APPLIED_ARGS = frozenset({"--HistoryManager.hist_file=:memory:"})

#: Read once at interpreter / kernel start-up: a different value needs a fresh kernel.
STARTUP_VARS = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONSAFEPATH",
    "PYTHONNOUSERSITE",
    "PYTHONUSERBASE",
    "PYTHONWARNINGS",
    "PYTHONHASHSEED",
    "IPYTHONDIR",
    "JUPYTER_CONFIG_DIR",
    "JUPYTER_CONFIG_PATH",
    "MPLBACKEND",
)

# Set by the daemon's own environment, never meant for a kernel.
_LEAKS = ("VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYTHONEXECUTABLE", "RUNTIMED_SOCKET")


def kernel_environ(base: Mapping[str, str], activation: Mapping[str, str]) -> dict[str, str]:
    """``base`` with an env's activation applied: ``PATH`` in ``activation`` is
    prepended to the base ``PATH``; every other variable is set as given."""
    env = {k: v for k, v in base.items() if k not in _LEAKS}
    for name, value in activation.items():
        if name == "PATH" and env.get("PATH"):
            env["PATH"] = value + os.pathsep + env["PATH"]
        else:
            env[name] = value
    return env


class RefusalKind(str, enum.Enum):
    """Why a kernel request was not served by a pre-started kernel."""

    STARTUP_VARIABLE = "startup_variable"  # a variable read at start-up differs
    KERNEL_ARGUMENT = "kernel_argument"  # an argument only a fresh kernel can apply
    FRESH_ASKED = "fresh_asked"  # the client asked for a fresh kernel
    NONE_READY = "none_ready"  # no pre-started kernel was ready
    DISABLED = "disabled"  # pre-started kernels are off for the backend
    TAKEOVER_FAILED = "takeover_failed"  # the kernel could not take the connection over


@define(frozen=True)
class Refusal:
    """A request a pre-started kernel did not serve: the kind, what (a variable's
    name, an argument), and the sentence for logs and the client."""

    kind: RefusalKind
    message: str
    detail: str = ""

    @property
    def label(self) -> str:
        """How it is counted (``status``, ``stats``): ``startup_variable:PYTHONPATH``."""
        return f"{self.kind.value}:{self.detail}" if self.detail else self.kind.value


def refusal(request: TakeKernel, prestart_env: Mapping[str, str]) -> Refusal | None:
    """Why a pre-started kernel started with ``prestart_env`` cannot serve
    ``request`` (None: it can)."""
    for arg in request.argv:
        if arg not in APPLIED_ARGS:
            return Refusal(RefusalKind.KERNEL_ARGUMENT, f"kernel argument {arg!r} needs a freshly started kernel", arg)
    return startup_refusal(request, prestart_env)


def startup_refusal(request: TakeKernel, prestart_env: Mapping[str, str]) -> Refusal | None:
    """Why an interpreter started beforehand with ``prestart_env`` (a pre-started
    kernel, or a pre-imported one that starts the kernel on claim) cannot serve
    ``request`` (None: it can)."""
    if not request.prestarted:
        return Refusal(RefusalKind.FRESH_ASKED, "the client asked for a fresh kernel")
    for name in STARTUP_VARS:
        if request.env.get(name) != prestart_env.get(name):
            message = f"{name} differs from the pre-started kernels' (read only at start-up)"
            return Refusal(RefusalKind.STARTUP_VARIABLE, message, name)
    return None
