"""Adding extra packages to a complete env: the backend's hook, then bytecode, warm-up, manifest.

Runs in the backend's worker (the ``install_extras`` job). The env keeps its id and
path; its manifest is rewritten last with what is now installed, the extras it got
(``details["extras"]``) and a spec hash of its own (``<base>+<key>``), so it can never
pass for a base env of its pool.
"""

from __future__ import annotations

from pathlib import Path

from attrs import evolve
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from runtimed.backend import Backend, BackendError, BuildRequest, ErrorKind, ExtrasRequest
from runtimed.core.records import EXTRAS_DETAIL
from runtimed.envs.envdir import Manifest, read_manifest, write_manifest
from runtimed.envs.tools import clean_env, run_command
from runtimed.envs.warm import read_warm_report

__all__ = ["add_extras", "check_python"]


def add_extras(backend: Backend, request: ExtrasRequest, key: str, bytecode_store: Path | None = None) -> Manifest:
    """Install the extras into the env at ``request.path``, warm it, rewrite its manifest.

    Raises :class:`BackendError`; the env is then no longer a clean base env and the
    caller deletes it.
    """
    manifest = read_manifest(request.path)
    if manifest is None:
        raise BackendError(ErrorKind.SETUP_FAILED, f"{request.path} has no manifest")
    if request.requires_python:
        check_python(backend.python_path(request.path), request.requires_python, backend.name)
    try:
        backend.install_extras(request)
        build = BuildRequest(
            env_id=manifest.id,
            path=request.path,
            config=request.config,
            cache_dir=request.cache_dir,
            progress=request.progress,
            bytecode_store=bytecode_store,
        )
        backend.warm(build)  # compiles the new files and imports the kernel's modules again
        installed = backend.installed_packages(request.path)
        whole = backend.whole_paths(request.path)
        details = {**manifest.details, **backend.manifest_details(build)}
    except BackendError:
        raise
    except Exception as exc:  # a plugin bug: classify it rather than lose it
        raise BackendError(ErrorKind.SETUP_FAILED, f"{type(exc).__name__}: {exc}") from exc
    details[EXTRAS_DETAIL] = {"key": key, "packages": list(request.packages), "channels": list(request.channels)}
    if request.project is not None:  # a project's env: its pip list and its file
        details[EXTRAS_DETAIL].update(pypi_packages=list(request.pypi_packages), project=str(request.project.file))
    bytecode = read_warm_report(request.path)
    if bytecode is not None:
        details["bytecode"] = bytecode
    updated = evolve(
        manifest,
        spec_hash=f"{manifest.spec_hash.split('+')[0]}+{key}",
        packages=installed,
        details=details,
        whole=whole,
    )
    write_manifest(request.path, updated)
    return updated


def check_python(python: Path, requires_python: str, backend: str) -> None:
    """Raise :class:`BackendError` unless the env's python satisfies ``requires_python``
    (a notebook's ``requires-python``): its packages would be installed for the wrong python."""
    try:
        wanted = SpecifierSet(requires_python)
    except InvalidSpecifier:
        message = f"requires-python {requires_python!r} is no version specifier"
        raise BackendError(ErrorKind.INVALID_PACKAGE, message) from None
    code = "import platform; print(platform.python_version())"
    version = run_command([python, "-c", code], env=clean_env(), what="python version").stdout.strip()
    if not wanted.contains(version, prereleases=True):
        raise BackendError(
            ErrorKind.UNSUPPORTED,
            f"requires-python {requires_python} is not met by the envs' python {version} "
            f"(set `python` in [backends.{backend}] to one that is)",
        )
