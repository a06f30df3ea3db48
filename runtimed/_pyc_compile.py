"""Compile listed sources to listed ``.pyc`` paths; run by an *env's* python, not runtimed's.

``python -I _pyc_compile.py < jobs.json``: ``jobs.json`` is ``[[source, pyc], ...]``.
Each source is compiled with :func:`py_compile.compile` (timestamp-based, the
interpreter's own magic number, written atomically: temp file + rename), in
parallel over the CPUs this process may use, at a lower priority (for more than
a few files) so the daemon and running kernels are not starved. Prints ``[[source, error], ...]`` for the
files that do not compile (Python 2 test data, templates shipped as ``.py``).

This file must run on any Python 3.8+ and import nothing from runtimed.
"""

from __future__ import annotations  # annotations stay strings: Python 3.8 runs this

import contextlib
import json
import os
import py_compile
import sys
from concurrent.futures import ProcessPoolExecutor

#: Below this many files a process pool costs more than it saves.
_POOL_THRESHOLD = 48
_NICENESS = 10


def _compile(job: list[str]) -> list[str] | None:
    source, pyc = job
    try:
        py_compile.compile(
            source,
            cfile=pyc,
            doraise=True,
            # Explicit: SOURCE_DATE_EPOCH would otherwise switch to hash-based pycs.
            invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP,
        )
    except Exception as exc:  # PyCompileError, OSError, ValueError (NUL bytes), ...
        message = str(exc).strip().splitlines()
        return [source, message[-1] if message else type(exc).__name__]
    return None


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def main() -> None:
    jobs: list[list[str]] = json.load(sys.stdin)
    if len(jobs) >= _POOL_THRESHOLD:  # a few files cost nothing: niced, they would only wait under load
        with contextlib.suppress(AttributeError, OSError):
            os.nice(_NICENESS)  # inherited by the pool's processes
    workers = min(_cpus(), max(1, len(jobs) // 16))
    if workers <= 1 or len(jobs) < _POOL_THRESHOLD:
        results = [_compile(job) for job in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_compile, jobs, chunksize=max(1, len(jobs) // (workers * 8))))
    json.dump([r for r in results if r is not None], sys.stdout)


if __name__ == "__main__":
    main()
