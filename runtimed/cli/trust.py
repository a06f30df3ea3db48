"""``runtimed trust``: approve installing notebooks' own dependencies (installing runs code)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from runtimed.config import ConfigError, load_config
from runtimed.deps import DependencySpec, TrustStore, TrustStoreError, default_trust_file, load_notebook_deps

from ._util import paths_from, table
from .trust_project import approve_project, is_project_file, revoke_project


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "trust",
        help="approve installing a notebook's own dependencies or a project's",
        description="Print each NOTEBOOK's dependencies (nteract metadata, a PEP 723 '# /// script' "
        "block, juv's uv.lock) and approve installing them: a kernel for the notebook then gets an env "
        "with those packages. Changing the dependencies afterwards needs a new approval. Approvals live "
        "in trust.json beside the config file ($RUNTIMED_TRUST_FILE overrides); notebooks are never modified.",
    )
    p.add_argument(
        "notebooks",
        nargs="*",
        metavar="NOTEBOOK|PROJECT",
        help="notebook (.ipynb) or project file (pyproject.toml, environment.yml, ...) to approve",
    )
    p.add_argument("--list", action="store_true", help="list the approvals and the allowed package names")
    p.add_argument(
        "--revoke",
        action="append",
        default=[],
        metavar="NOTEBOOK|KEY",
        help="forget the approval of a notebook "
        "(its dependencies as they are now) or of a KEY (or its first characters) from --list",
    )
    p.add_argument(
        "--package",
        action="append",
        default=[],
        metavar="NAME",
        help="allow a package name: a notebook "
        "whose packages (and lock pins) are all allowed is trusted without approving it",
    )
    p.add_argument("--remove-package", action="append", default=[], metavar="NAME", help="allow NAME no longer")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if not (args.notebooks or args.list or args.revoke or args.package or args.remove_package):
        print("runtimed trust: name a NOTEBOOK, or use --list, --revoke or --package", file=sys.stderr)
        return 2
    store = TrustStore(default_trust_file())
    try:
        failures = [
            approve_project(store, Path(n)) if is_project_file(Path(n)) else _approve(store, Path(n))
            for n in args.notebooks
        ]
        failures += [_revoke(store, r) for r in args.revoke]
        failures += [_allow(store, n) for n in args.package]
        failures += [_disallow(store, n) for n in args.remove_package]
        if args.list:
            _list(store)
    except TrustStoreError as exc:
        print(f"runtimed: {exc}", file=sys.stderr)
        return 1
    _note_when_off(args)
    return 1 if any(failures) else 0


def _declared(path: Path) -> tuple[list[DependencySpec], str | None]:
    """Every spec the notebook declares (uv and conda: either may serve it), or why none."""
    result = load_notebook_deps(path)
    if result.problem:
        return [], result.problem
    deps = result.deps
    specs = [s for s in (deps.spec, deps.ignored) if s is not None] if deps else []
    if not specs:
        return [], f"{path} declares no dependencies (no '# /// script' block, no metadata.runt.uv/conda)"
    for note in deps.notes if deps else ():
        print(f"  note: {note}")
    return specs, None


def _approve(store: TrustStore, path: Path) -> bool:
    """Approve a notebook's dependencies; True when that failed."""
    specs, problem = _declared(path)
    if problem:
        print(f"runtimed: {problem}", file=sys.stderr)
        return True
    print(f"{path}:")
    for spec in specs:
        print(f"  {spec.describe()}")
        for pin in spec.pins:
            print(f"    locked: {pin}")
        approval = store.approve(spec, path.absolute())
        print(f"  approved (key {approval.key[:12]})")
    return False


def _revoke(store: TrustStore, target: str) -> bool:
    path = Path(target)
    if path.is_file() and is_project_file(path):
        return revoke_project(store, path)
    if path.suffix == ".ipynb" or path.is_file():
        specs, problem = _declared(path)
        if problem:
            print(f"runtimed: {problem}", file=sys.stderr)
            return True
        removed = [a for s in specs for a in store.revoke(s)]
    else:
        removed = store.revoke(target)
    if not removed:
        print(f"runtimed: no approval of {target} to revoke (see `runtimed trust --list`)", file=sys.stderr)
        return True
    for approval in removed:
        print(f"revoked {approval.key[:12]}  {approval.summary}")
    return False


def _allow(store: TrustStore, name: str) -> bool:
    try:
        print(f"allowed package {store.allow_package(name)}")
    except ValueError as exc:
        print(f"runtimed: {exc}", file=sys.stderr)
        return True
    return False


def _disallow(store: TrustStore, name: str) -> bool:
    if not store.disallow_package(name):
        print(f"runtimed: {name} is not in the allowed packages", file=sys.stderr)
        return True
    print(f"package {name} is no longer allowed")
    return False


def _list(store: TrustStore) -> None:
    approvals = store.approved()
    if approvals:
        rows = [["KEY", "APPROVED", "NOTEBOOK", "DEPENDENCIES"]]
        rows += [[a.key[:12], a.approved_at[:19], a.notebook or "-", a.summary] for a in approvals]
        print(table(rows))
    else:
        print("no approved notebooks")
    packages = store.allowed_packages()
    print(f"allowed packages: {', '.join(packages) if packages else '(none)'}")


def _note_when_off(args: argparse.Namespace) -> None:
    config_file = paths_from(args).config_file
    try:
        enabled = load_config(config_file).daemon.trust_notebooks
    except ConfigError:
        return
    if not enabled:
        print(f"note: [daemon] trust_notebooks = false in {config_file}: every notebook is trusted", file=sys.stderr)
