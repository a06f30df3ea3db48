"""What the provisioner asks the daemon for a notebook that declares its own packages.

The notebook is the one ``JPY_SESSION_NAME`` names (jupyter_server sets it; nbclient
and papermill users pass it in the kernel's ``env``). Its dependencies
(:mod:`runtimed.deps`) are asked for only once the user trusted them (``runtimed
trust``); otherwise the kernel is a base one that says, on a failing import, which
packages were not installed and the command that approves them. Read on every
start, so a restart after editing the dependencies gets the new set.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from attrs import field, frozen

from runtimed.config import ConfigError, load_config
from runtimed.deps import (
    Backend,
    DependencySpec,
    TrustStore,
    TrustStoreError,
    find_notebook,
    load_notebook_deps,
    untrusted_message,
)
from runtimed.protocol.messages import PackageOptions
from runtimed.util.paths import Paths

__all__ = ["NotebookPackages", "notebook_packages", "project_dir"]

if TYPE_CHECKING:
    Log = logging.Logger | logging.LoggerAdapter[logging.Logger]


@frozen
class NotebookPackages:
    """What to put in a kernel request: the backend, the packages to install (none
    when untrusted), and the notice shown when they were not installed."""

    backend: str
    packages: list[str]
    channels: list[str]
    notice: str = ""
    options: PackageOptions = field(factory=PackageOptions)


def notebook_packages(env: Mapping[str, str], cwd: str, backend: str, log: Log) -> NotebookPackages | None:
    """The request's packages for the notebook the kernel runs; None when it declares none."""
    path = find_notebook(env.get("JPY_SESSION_NAME"), cwd)
    if path is None:
        return None
    read = load_notebook_deps(path, backend)
    if read.problem:
        log.warning("runtimed: the notebook's dependencies were not read: %s", read.problem)
    spec = read.spec
    if spec is None:
        return None
    if not _trusted(spec, log):
        log.warning("runtimed: %s declares packages not approved yet; a base kernel serves it", path)
        return NotebookPackages(backend, [], [], untrusted_message(spec, path))
    packages = list(spec.pins) or list(spec.packages)
    log.info("runtimed: %s needs %s", path, ", ".join(packages))
    return NotebookPackages(spec.backend.value, packages, list(spec.channels), options=package_options(spec))


def package_options(spec: DependencySpec) -> PackageOptions:
    """How the notebook's packages are installed: its python (uv's ``requires-python``,
    or conda's ``python`` version, which the env's python must match) and uv's
    ``exclude-newer`` (``juv stamp``)."""
    python = spec.python
    if python and spec.backend is Backend.CONDA and python[0].isdigit():
        python = f"=={python}.*" if python.count(".") < 2 else f"=={python}"
    exclude_newer = spec.uv_option("exclude-newer")
    return PackageOptions(requires_python=python, exclude_newer=str(exclude_newer) if exclude_newer else None)


def project_dir(env: Mapping[str, str], cwd: str) -> str:
    """Where the daemon looks for the notebook's project: the notebook's directory,
    else the kernel's cwd. Asked only when the notebook declares no packages of its
    own: a notebook's own dependencies win over its project's."""
    path = find_notebook(env.get("JPY_SESSION_NAME"), cwd)
    return str(path.parent) if path is not None else cwd


def _trusted(spec: DependencySpec, log: Log) -> bool:
    try:
        store = TrustStore.from_config(load_config(Paths.resolve().config_file))  # only for a notebook with deps
        return store.is_trusted(spec)
    except (ConfigError, TrustStoreError, OSError) as exc:
        log.warning("runtimed: the trust store could not be read (%s); the notebook's packages are not installed", exc)
        return False
