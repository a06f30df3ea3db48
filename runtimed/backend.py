"""The interface an environment backend implements, and helpers backends share.

A plugin's ``runtimed_backend`` hook returns a :class:`Backend` instance. The
worker drives it: :meth:`Backend.create` builds the env at its final path,
:meth:`Backend.warm` makes it ready for a kernel, :meth:`Backend.validate` checks
it, and the worker then writes the manifest (see ``runtimed.envs.build``). Backends
report failures by raising :class:`BackendError` with a classified ``kind``.

The failure types (``runtimed.core.failure``), process helpers (``runtimed.envs.tools``),
conda-prefix helpers (``runtimed.envs.condaprefix``),
the config record and the hook marker live apart and are re-exported here: a plugin
imports everything it needs from this one module, and nothing else of runtimed (a
test holds every plugin under ``plugins/`` and ``examples/`` to that).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import pluggy
from attrs import define, field

from runtimed.config import BackendConfig
from runtimed.core.failure import BackendError, ErrorKind, Failure
from runtimed.core.phases import BuildPhase
from runtimed.core.project import ProjectSpec
from runtimed.envs.bytecode import BytecodeError
from runtimed.envs.condaprefix import CONDA_RECORD_FIELDS, conda_activation, conda_records
from runtimed.envs.envdir import META_DIR
from runtimed.envs.pypi import find_uv, install_pypi
from runtimed.envs.tools import clean_env, run_command
from runtimed.envs.warm import WarmupFailed, warm_env
from runtimed.util.files import write_json_atomic
from runtimed.util.modes import Repair, repair_once
from runtimed.util.output import tail
from runtimed.util.tasks import run_sync

__all__ = [
    "CONDA_RECORD_FIELDS",
    "META_DIR",
    "PROJECT",
    "Availability",
    "Backend",
    "BackendConfig",
    "BackendError",
    "BuildPhase",
    "BuildRequest",
    "ErrorKind",
    "ExtrasRequest",
    "Failure",
    "ProjectSpec",
    "Repair",
    "clean_env",
    "conda_activation",
    "conda_records",
    "find_uv",
    "hookimpl",
    "install_pypi",
    "list_distributions",
    "module_files",
    "repair_once",
    "run_command",
    "run_sync",
    "tail",
    "warmup_import",
    "write_json_atomic",
]

PROJECT = "runtimed"  # pluggy project name and entry-point group
#: Marks a plugin's ``runtimed_backend`` hook: ``@hookimpl def runtimed_backend(): ...``
hookimpl = pluggy.HookimplMarker(PROJECT)


@define(frozen=True)
class Availability:
    """Whether the backend's tools are present (e.g. the uv binary)."""

    ok: bool
    reason: str | None = None
    detail: str | None = None  # e.g. the tool's path and version


def _no_progress(_message: str) -> None:
    pass


def _no_phase(_phase: BuildPhase) -> None:
    pass


@define(frozen=True)
class BuildRequest:
    """One env to build: its id, final path, config and the backend's cache dir.

    ``bytecode_store`` is the shared bytecode store (``<cache>/bytecode``) that
    :meth:`Backend.warm` links ``.pyc`` files from; None compiles per env.
    ``progress`` reports what the build is doing (free text, shown in ``status``);
    ``phase`` reports that it enters a :class:`BuildPhase` (a backend calls
    ``request.phase(BuildPhase.INSTALLING)`` in :meth:`Backend.create`; the
    creating, compiling and warming-up phases are reported by runtimed).
    """

    env_id: str
    path: Path
    config: BackendConfig
    cache_dir: Path
    progress: Callable[[str], None] = field(default=_no_progress, eq=False)
    bytecode_store: Path | None = None
    phase: Callable[[BuildPhase], None] = field(default=_no_phase, eq=False)


@define(frozen=True)
class ExtrasRequest:
    """Extra packages to install into the existing, complete env at ``path``.

    ``packages`` are PEP 508 requirements, ``channels`` conda channels (empty: the
    env's own). ``config`` is the pool's config the env was built with; ``cache_dir``
    the backend's cache dir. runtimed compiles, warms up and re-validates the env
    afterwards, and rewrites its manifest.
    """

    path: Path
    packages: tuple[str, ...]
    config: BackendConfig
    cache_dir: Path
    channels: tuple[str, ...] = ()
    progress: Callable[[str], None] = field(default=_no_progress, eq=False)
    #: PEP 508 requirements to install with uv into a conda prefix (a project's pip list).
    pypi_packages: tuple[str, ...] = ()
    #: The env's python must satisfy this (checked by runtimed before the install).
    requires_python: str | None = None
    #: Only versions uploaded before this RFC 3339 time (uv's ``--exclude-newer``).
    exclude_newer: str | None = None
    #: Set when the extras are a project's (:meth:`Backend.read_project`): a backend
    #: that installs from the project's lock itself may use it.
    project: ProjectSpec | None = None


class Backend:
    """Base class for backends; subclasses set ``name`` and implement :meth:`create`.

    Bump ``recipe_version`` when the way envs are built changes: it is part of the
    spec hash, so envs built by the old recipe are retired.
    """

    name: ClassVar[str] = ""
    recipe_version: ClassVar[str] = "1"
    #: Packages every env of this backend gets, before the configured ones.
    base_packages: ClassVar[tuple[str, ...]] = ("ipykernel", "ipywidgets")
    #: Modules imported by the warm-up (and by :meth:`validate`).
    warmup_modules: ClassVar[tuple[str, ...]] = ("ipykernel.kernelapp", "ipywidgets")
    #: Top-level modules whose files must still exist for an env to be handed out
    #: (see :meth:`whole_paths`): the kernel's launcher and ipykernel.
    whole_modules: ClassVar[tuple[str, ...]] = ("ipykernel_launcher", "ipykernel")
    #: File names of the projects this backend understands (``pyproject.toml``,
    #: ``environment.yml``, ``pixi.toml``): runtimed walks up from a notebook's
    #: directory and the closest such file wins; :meth:`read_project` reads it.
    project_files: ClassVar[tuple[str, ...]] = ()

    def availability(self) -> Availability:
        return Availability(ok=True)

    def prepare(self, cache_dir: Path) -> None:
        """Called once by the worker when it starts, before any job (``cache_dir`` is
        the backend's own cache dir). The default does nothing; an exception is logged."""

    def packages(self, config: BackendConfig) -> list[str]:
        """The requested packages: base packages then configured ones, deduplicated."""
        seen: dict[str, None] = {}
        for spec in (*self.base_packages, *config.packages):
            seen.setdefault(spec, None)
        return list(seen)

    def spec_hash(self, config: BackendConfig) -> str:
        """A hash of everything that decides an env's contents."""
        data = {
            "backend": self.name,
            "recipe": self.recipe_version,
            "packages": self.packages(config),
            **{k: v for k, v in config.spec_fields().items() if k != "packages"},
        }
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def create(self, request: BuildRequest) -> None:
        """Build the env at ``request.path`` (its final path: envs embed it)."""
        raise NotImplementedError

    def install_extras(self, request: ExtrasRequest) -> None:
        """Install ``request.packages`` into the env at ``request.path`` (offline first
        where the tool can). Optional: the default says the backend cannot. Raise
        :class:`BackendError` classified as for :meth:`create` (``invalid_package``
        naming the package, ``network``, ...)."""
        raise BackendError(ErrorKind.UNSUPPORTED, f"backend {self.name!r} cannot install extra packages")

    def read_project(self, file: Path) -> ProjectSpec | None:
        """What the project file ``file`` (named in :attr:`project_files`) declares;
        None when it is not a project of this backend (a ``pyproject.toml`` with no
        ``[project]`` table). Raise ``ValueError`` with a message for a malformed one.
        The project is then installed into one of the backend's envs through
        :meth:`install_extras` (``request.project`` set)."""
        return None

    def warm(self, request: BuildRequest) -> None:
        """Make the env ready for a kernel: its bytecode, then a warm-up import that must succeed.

        Each ``.py`` file hardlinked from a package cache gets its ``.pyc`` hardlinked
        from ``request.bytecode_store`` (compiled there once for every env); other
        files are compiled for this env (see :mod:`runtimed.envs.warm`).
        """
        python = self.python_path(request.path)
        if not python.exists():
            raise BackendError(ErrorKind.SETUP_FAILED, f"the env has no python at {python}")
        try:
            warm_env(
                python,
                request.path,
                store=request.bytecode_store,
                modules=self.warmup_modules,
                env=clean_env(),
                progress=request.progress,
                phase=request.phase,
            )
        except (BytecodeError, WarmupFailed) as exc:
            raise BackendError(ErrorKind.SETUP_FAILED, str(exc)) from exc

    def validate(self, path: Path) -> None:
        """Raise :class:`BackendError` unless the env at ``path`` can start a kernel."""
        python = self.python_path(path)
        if not python.exists():
            raise BackendError(ErrorKind.SETUP_FAILED, f"no python at {python}")
        warmup_import(python, self.warmup_modules)

    def python_path(self, path: Path) -> Path:
        return path / "bin" / "python"

    def installed_packages(self, path: Path) -> list[str]:
        """``name==version`` of everything installed, for the manifest."""
        return list_distributions(self.python_path(path))

    def activation(self, path: Path) -> dict[str, str]:
        """The variables that activate the env at ``path``; kernels run with them.

        ``PATH`` holds directories to prepend to the kernel's ``PATH``; every other
        variable is set as given. Recorded in the manifest at build time.
        """
        return {"PATH": str(self.python_path(path).parent)}

    def whole_paths(self, path: Path) -> list[str]:
        """What makes the env at ``path`` whole: paths relative to it (an absolute path
        is checked as is) that must all exist for the env to be handed out.

        Called once at build time and recorded in the manifest; each take then checks
        them with one ``stat`` each, and an env missing one (a cache cleaner deleted
        it) is deleted instead of handed out. Keep the list short. The default: the
        python, and the file of each of :attr:`whole_modules` as the env's python
        finds it (``site-packages/ipykernel/__init__.py``, ``ipykernel_launcher.py``).
        """
        python = self.python_path(path)
        paths = [python, *module_files(python, self.whole_modules)]
        return [str(p.relative_to(path)) if p.is_relative_to(path) else str(p) for p in paths]

    def manifest_details(self, request: BuildRequest) -> dict[str, object]:
        """Backend-specific manifest data (e.g. exact conda records)."""
        return {}

    @property
    def version(self) -> str:
        """The version of the distribution providing this backend."""
        from importlib.metadata import PackageNotFoundError, version

        module = type(self).__module__.split(".")[0]
        try:
            return version(module.replace("_", "-"))
        except PackageNotFoundError:
            return "0"


# ---------------------------------------------------------------- helpers


def warmup_import(python: Path, modules: Sequence[str]) -> None:
    """Import ``modules`` in the env's python (writing any bytecode still missing)."""
    code = "; ".join(f"import {m}" for m in modules) or "pass"
    run_command([python, "-c", code], env=clean_env(write_bytecode=True), what="warm-up import")


def module_files(python: Path, modules: Sequence[str]) -> list[Path]:
    """The file each of the top-level ``modules`` is loaded from by ``python``
    (a package's ``__init__.py``), without importing them; modules it cannot find are left out."""
    script = (
        "import importlib.util as u, json, sys;"
        "specs = [u.find_spec(m) for m in sys.argv[1:]];"
        "print(json.dumps([s.origin for s in specs if s is not None and s.has_location]))"
    )
    proc = run_command([python, "-I", "-B", "-c", script, *modules], what="python (module files)")
    return [Path(origin) for origin in json.loads(proc.stdout)]


def list_distributions(python: Path) -> list[str]:
    """``name==version`` of every distribution importable by ``python``, sorted."""
    script = (
        "import importlib.metadata as m, json;"
        "print(json.dumps(sorted({f\"{d.metadata['Name']}=={d.version}\" for d in m.distributions()"
        " if d.metadata['Name']})))"
    )
    return list(json.loads(run_command([python, "-c", script], what="python (metadata)").stdout))
