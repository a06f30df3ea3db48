"""A notebook's own dependencies: reading them (nteract metadata, PEP 723, juv's lock)
and whether the user approved installing them. Knows nothing of the daemon."""

from __future__ import annotations

from runtimed.deps.message import approve_command, untrusted_message
from runtimed.deps.notebook import NotebookRead, find_notebook, load_notebook_deps, read_notebook_deps
from runtimed.deps.readers import NotebookDeps, choose_spec, notebook_deps, read_deps
from runtimed.deps.spec import Backend, DependencySpec, Source, canonical_name
from runtimed.deps.trust import Approval, TrustStore, TrustStoreError, default_trust_file

__all__ = [
    "Approval",
    "Backend",
    "DependencySpec",
    "NotebookDeps",
    "NotebookRead",
    "Source",
    "TrustStore",
    "TrustStoreError",
    "approve_command",
    "canonical_name",
    "choose_spec",
    "default_trust_file",
    "find_notebook",
    "load_notebook_deps",
    "notebook_deps",
    "read_deps",
    "read_notebook_deps",
    "untrusted_message",
]
