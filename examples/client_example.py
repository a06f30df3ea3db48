"""Using runtimed from Python: get a prewarmed env, run something in it, give it back.

python examples/client_example.py
"""

from __future__ import annotations

import subprocess

from runtimed import Client, take_env, try_get_pooled_env

# The notebook's fast path: an env from the pool, or None (never raises).
env = try_get_pooled_env("uv")
if env is None:
    # No daemon (or an empty pool): build one in this process with the same backend.
    env = take_env("uv")
print(f"env {env.id} at {env.venv_path}")
subprocess.run([env.python_path, "-c", "import ipykernel, sys; print(sys.prefix)"], check=True)

# With a daemon, give it back when done: it is deleted (and the pool refills).
try:
    with Client() as client:
        client.release(env.venv_path)
        print(client.status().pools["uv"])
except Exception as exc:  # the env came from the fallback: it is ours to keep
    print(f"kept {env.venv_path} ({exc})")
