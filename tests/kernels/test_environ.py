"""When a pre-started kernel can serve a request, and a kernel's environment (pure)."""

from __future__ import annotations

import os

from runtimed.config import parse_config
from runtimed.kernels.environ import kernel_environ, refusal
from runtimed.kernels.provisioner import kernel_arguments
from runtimed.protocol.messages import (
    REPLY_TYPES,
    REQUEST_TYPES,
    KernelReply,
    LaunchedKernel,
    PooledEnv,
    TakeKernel,
    decode_line,
    encode,
)

BASE = {"PATH": "/usr/bin", "HOME": "/home/u"}


def test_nbclient_arguments_are_served_others_are_not() -> None:
    assert refusal(TakeKernel(env_type="uv", env=BASE, argv=["--HistoryManager.hist_file=:memory:"]), BASE) is None
    reason = refusal(TakeKernel(env_type="uv", env=BASE, argv=["--matplotlib=inline"]), BASE)
    assert reason is not None and "--matplotlib=inline" in reason.message
    assert reason.label == "kernel_argument:--matplotlib=inline"


def test_a_pinned_connection_is_served_startup_variables_and_opt_out_are_not() -> None:
    assert refusal(TakeKernel(env_type="uv", env=BASE, connection={"shell_port": 1}), BASE) is None  # taken over
    assert refusal(TakeKernel(env_type="uv", env=BASE, prestarted=False), BASE)
    reason = refusal(TakeKernel(env_type="uv", env={**BASE, "PYTHONPATH": "/src"}), BASE)
    assert reason is not None and "PYTHONPATH" in reason.message and reason.label == "startup_variable:PYTHONPATH"
    # Other variables are simply applied.
    assert refusal(TakeKernel(env_type="uv", env={**BASE, "JPY_SESSION_NAME": "x.ipynb"}), BASE) is None


def test_activation_prepends_path_and_sets_the_rest() -> None:
    env = kernel_environ({**BASE, "VIRTUAL_ENV": "/jupyter-venv"}, {"PATH": "/env/bin", "VIRTUAL_ENV": "/env"})
    assert env["PATH"] == "/env/bin" + os.pathsep + "/usr/bin" and env["VIRTUAL_ENV"] == "/env"
    assert kernel_environ({"HOME": "/h"}, {"PATH": "/env/bin"})["PATH"] == "/env/bin"


def test_kernel_arguments_of_a_kernelspec_argv() -> None:
    plain = ["/py", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert kernel_arguments(plain, ["--HistoryManager.hist_file=:memory:"]) == ["--HistoryManager.hist_file=:memory:"]
    assert kernel_arguments([*plain, "--matplotlib=inline"], []) == ["--matplotlib=inline"]
    assert kernel_arguments(["/py", "-m", "mykernel", "-f", "{connection_file}"], []) is None


def test_kernels_default_follows_the_pool() -> None:
    config = parse_config({"backends": {"uv": {"pool_size": 0}, "conda": {"pool_size": 1, "kernels": 3}}})
    assert config.backend("uv").kernel_target == 0
    assert config.backend("conda").kernel_target == 3
    assert config.backend("other").kernel_target == 1


def test_take_kernel_messages_round_trip() -> None:
    request = TakeKernel(env_type="uv", cwd="/nb", env={"A": "1"}, argv=["--x"], owner_pid=5)
    assert decode_line(encode(request).rstrip(b"\n"), REQUEST_TYPES) == request
    env = PooledEnv(env_type="uv", venv_path="/e", python_path="/e/bin/python", id="1")
    reply = KernelReply(
        LaunchedKernel(id="k", pid=9, create_time=1.5, connection={"key": "ab"}, env=env, prestarted=True)
    )
    assert decode_line(encode(reply).rstrip(b"\n"), REPLY_TYPES) == reply
