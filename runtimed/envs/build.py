"""Building one env with a backend: create, warm, validate, then the manifest, last.

Used by the worker (for the pool) and by the client's in-process fallback, so
both produce the same complete, warmed env.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from runtimed.backend import Backend, BackendError, BuildRequest, ErrorKind
from runtimed.core.phases import BuildPhase
from runtimed.envs.envdir import Manifest, prepare_lease, write_manifest
from runtimed.envs.warm import read_warm_report
from runtimed.util.diskspace import low_space_note
from runtimed.util.files import now_iso

__all__ = ["build_env"]


def build_env(backend: Backend, request: BuildRequest) -> Manifest:
    """Build, warm and validate the env at ``request.path``; write its manifest last.

    Raises :class:`BackendError`; whatever was left on disk is then partial (no
    manifest) and the caller deletes it.
    """
    if request.path.exists():
        raise BackendError(ErrorKind.SETUP_FAILED, f"{request.path} already exists")
    try:
        availability = backend.availability()
        if not availability.ok:
            raise BackendError(ErrorKind.TOOL_MISSING, availability.reason or f"{backend.name} is not available")
        request.phase(BuildPhase.CREATING)
        backend.create(request)
        # Listing the installed packages and finding what makes the env whole only read
        # metadata and look files up: they overlap the warm-up.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="packages") as pool:
            packages = pool.submit(backend.installed_packages, request.path)
            whole_paths = pool.submit(backend.whole_paths, request.path)
            backend.warm(request)  # its warm-up import is the validation of a fresh env
            installed = packages.result()
            whole = whole_paths.result()
        details = backend.manifest_details(request)
        bytecode = read_warm_report(request.path)  # absent if a backend's own warm() skipped ours
        if bytecode is not None:
            details.setdefault("bytecode", bytecode)
        manifest = Manifest(
            env_type=backend.name,
            id=request.env_id,
            spec_hash=backend.spec_hash(request.config),
            python_path=str(backend.python_path(request.path)),
            packages=installed,
            created_at=now_iso(),
            backend_version=backend.version,
            details=details,
            activation=backend.activation(request.path),
            whole=whole,
        )
    except BackendError as exc:
        noted = _with_disk_note(exc, request)
        if noted is exc:
            raise
        raise noted from exc
    except Exception as exc:  # a plugin bug: classify it rather than lose it
        error = BackendError(ErrorKind.SETUP_FAILED, f"{type(exc).__name__}: {exc}")
        raise _with_disk_note(error, request) from exc
    prepare_lease(request.path)
    write_manifest(request.path, manifest)
    return manifest


#: Failures a full disk can hide behind (not a missing tool, the network or a timeout).
_DISK_KINDS = frozenset({ErrorKind.SETUP_FAILED, ErrorKind.INVALID_PACKAGE})


def _with_disk_note(error: BackendError, request: BuildRequest) -> BackendError:
    """``error``, led by ``disk full: …`` when the envs' file system is full (checked
    while the partial env is still there): the tool may have reported a follow-on error."""
    note = low_space_note(request.path.parent) if error.kind in _DISK_KINDS else None
    if note is None:
        return error
    return BackendError(error.kind, f"{note}; {error.message}", error.package)
