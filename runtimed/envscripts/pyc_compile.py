"""Compile listed sources to listed ``.pyc`` paths; run by an *env's* python, not runtimed's.

``python -I pyc_compile.py < jobs.json``: ``jobs.json`` is ``[[source, pyc], ...]``.
``python -I pyc_compile.py --check < pycs.json`` only loads each listed ``.pyc``
and prints the ones whose body does not load.
Each source is compiled with :func:`py_compile.compile` (timestamp-based, the
interpreter's own magic number, written atomically: temp file + rename), in
parallel over the CPUs this process may use, at a lower priority (for more than
a few files) so the daemon and running kernels are not starved. Prints ``[[source, error, errno], ...]``
for the files that do not compile (Python 2 test data, templates shipped as ``.py``;
``errno`` is null unless writing failed, e.g. 28 for a full file system).

Each ``.pyc`` written is read back and its body loaded with :func:`marshal.loads`:
``py_compile`` does not check how much a write wrote, so on a full file system it
can leave a valid header and a short body. Such a file is removed and reported,
never left for runtimed to publish.

This file must run on any Python 3.8+ and import nothing from runtimed.
"""

from __future__ import annotations  # annotations stay strings: Python 3.8 runs this

import contextlib
import errno
import json
import marshal
import os
import py_compile
import sys
from concurrent.futures import ProcessPoolExecutor

#: Below this many files a process pool costs more than it saves.
_POOL_THRESHOLD = 48
_NICENESS = 10


def _compile(job: list[str]) -> list[object] | None:
    source, pyc = job
    try:
        py_compile.compile(
            source,
            cfile=pyc,
            doraise=True,
            # Explicit: SOURCE_DATE_EPOCH would otherwise switch to hash-based pycs.
            invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP,
        )
        _check_written(pyc)
    except Exception as exc:  # PyCompileError, OSError, ValueError (NUL bytes), ...
        message = str(exc).strip().splitlines()
        code = exc.errno if isinstance(exc, OSError) else None
        return [source, message[-1] if message else type(exc).__name__, code]
    return None


def _load_error(data: bytes) -> str | None:
    """Why the ``.pyc`` bytes ``data`` do not hold a loadable code object, or None."""
    try:
        if len(data) <= 16 or type(marshal.loads(data[16:])).__name__ != "code":
            return "no code object after the header"
    except (EOFError, ValueError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_written(pyc: str) -> None:
    """Raise OSError (and remove ``pyc``) unless its body loads as a code object."""
    with open(pyc, "rb") as f:
        data = f.read()
    error = _load_error(data)
    if error is not None:
        with contextlib.suppress(OSError):
            os.unlink(pyc)
        what = f"{pyc} was written short or damaged ({len(data)} bytes: {error})"
        if _nearly_full(os.path.dirname(pyc)):
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: {what}") from None
        raise OSError(what) from None


def _nearly_full(directory: str) -> bool:
    """Whether the file system of ``directory`` has (almost) no space left for this user."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 20


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _damaged(pyc: str) -> bool:
    try:
        with open(pyc, "rb") as f:
            return _load_error(f.read()) is not None
    except OSError:
        return True


def main() -> None:
    if sys.argv[1:] == ["--check"]:
        json.dump([pyc for pyc in json.load(sys.stdin) if _damaged(pyc)], sys.stdout)
        return
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
