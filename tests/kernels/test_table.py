"""The kernel table's memory of how kernels ended (the argv launcher exits with it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runtimed.kernels import table as table_module
from runtimed.kernels.launch import LiveKernel
from runtimed.kernels.process import KernelRecord, KernelState, make_kernel_dir
from runtimed.kernels.table import EnvAccess, KernelTable


async def _no_env(_backend: str, _wait: float) -> None:
    return None


def _table(root: Path) -> KernelTable:
    envs = EnvAccess(take=_no_env, lease=lambda _p, _pid: None, discard=lambda _p: None, activation=lambda _e: {})
    return KernelTable(root, envs)


def _kernel(table: KernelTable, kernel_id: str, code: str) -> LiveKernel:
    proc = subprocess.Popen([sys.executable, "-c", code])
    record = KernelRecord(kernel_id, "uv", "/env", proc.pid, 0.0, KernelState.HANDED_OUT)
    kernel = LiveKernel(record=record, dir=make_kernel_dir(table.root, kernel_id), proc=proc)
    table.kernels[kernel_id] = kernel
    return kernel


def test_exit_status_of_a_running_then_forgotten_kernel(tmp_path: Path) -> None:
    table = _table(tmp_path / "kernels")
    kernel = _kernel(table, "k1", "import os, time; time.sleep(0.2); os._exit(3)")
    assert table.exit_code("k1", 30.0) == 3  # waited for
    table.forget(kernel)
    assert "k1" not in table.kernels and table.exit_code("k1", 0.0) == 3  # remembered
    assert table.exit_code("unknown", 0.0) is None


def test_the_memory_of_exit_statuses_is_bounded(tmp_path: Path) -> None:
    table = _table(tmp_path / "kernels")
    kept = table_module.EXIT_CODES_KEPT
    table.exit_codes.update((f"old{i}", 0) for i in range(kept))
    kernel = _kernel(table, "k2", "import os; os._exit(4)")
    kernel.proc.wait()  # type: ignore[union-attr]
    table.forget(kernel)
    assert len(table.exit_codes) == kept and "old0" not in table.exit_codes and table.exit_codes["k2"] == 4
