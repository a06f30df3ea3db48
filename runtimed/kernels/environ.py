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

import os
from collections.abc import Mapping

from runtimed.protocol.messages import TakeKernel

__all__ = ["APPLIED_ARGS", "STARTUP_VARS", "kernel_environ", "refusal", "startup_refusal"]

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


def refusal(request: TakeKernel, prestart_env: Mapping[str, str]) -> str | None:
    """Why a pre-started kernel cannot serve ``request`` (None: it can)."""
    for arg in request.argv:
        if arg not in APPLIED_ARGS:
            return f"kernel argument {arg!r} needs a freshly started kernel"
    return startup_refusal(request, prestart_env)


def startup_refusal(request: TakeKernel, prestart_env: Mapping[str, str]) -> str | None:
    """Why an interpreter started beforehand (a pre-started kernel, or a pre-imported
    one that starts the kernel on claim) cannot serve ``request`` (None: it can)."""
    if not request.prestarted:
        return "the client asked for a fresh kernel"
    for name in STARTUP_VARS:
        if request.env.get(name) != prestart_env.get(name):
            return f"{name} differs from the pre-started kernels' (read only at start-up)"
    return None
