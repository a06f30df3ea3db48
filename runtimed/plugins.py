"""Plugin hooks (pluggy) and discovery of backends from entry points.

Discovery reads entry-point metadata only and never imports a plugin; importing
happens in that backend's worker process (:func:`load_backend`), so a plugin that
fails to import, raises or crashes harms nothing but itself.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

import pluggy
from attrs import define

from runtimed.backend import Backend

__all__ = [
    "PROJECT",
    "BackendSpec",
    "PluginInfo",
    "PluginLoadError",
    "discover_plugins",
    "hookimpl",
    "hookspec",
    "load_backend",
]

PROJECT = "runtimed"  # pluggy project name and entry-point group
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class BackendSpec:
    """The hooks a backend plugin implements."""

    @hookspec
    def runtimed_backend(self) -> Backend:  # type: ignore[empty-body]
        """Return the backend object this plugin provides."""


@define(frozen=True)
class PluginInfo:
    """A backend plugin as its entry point describes it (nothing imported)."""

    name: str
    value: str  # "module" or "module:attr"
    distribution: str
    version: str


class PluginLoadError(Exception):
    """A plugin could not be imported or did not provide a backend."""


def _entry_points() -> list[EntryPoint]:
    return list(entry_points(group=PROJECT))


def discover_plugins() -> dict[str, PluginInfo]:
    """Backends by name, from entry-point metadata. The first of duplicate names wins."""
    found: dict[str, PluginInfo] = {}
    for ep in _entry_points():
        dist = ep.dist
        info = PluginInfo(
            name=ep.name,
            value=ep.value,
            distribution=dist.metadata["Name"] if dist is not None else "?",
            version=dist.version if dist is not None else "?",
        )
        found.setdefault(ep.name, info)
    return found


def load_backend(name: str) -> Backend:
    """Import plugin ``name`` into a fresh PluginManager and return its backend.

    Raises :class:`PluginLoadError` with the reason if anything goes wrong.
    """
    eps = [ep for ep in _entry_points() if ep.name == name]
    if not eps:
        raise PluginLoadError(f"no backend plugin named {name!r} is installed (entry-point group {PROJECT!r})")
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(BackendSpec)
    try:
        plugin = eps[0].load()
    except Exception as exc:
        raise PluginLoadError(f"importing {eps[0].value} failed: {type(exc).__name__}: {exc}") from exc
    try:
        pm.register(plugin, name=name)
        results = pm.hook.runtimed_backend()
    except Exception as exc:
        raise PluginLoadError(f"plugin {name!r} failed: {type(exc).__name__}: {exc}") from exc
    backends = [b for b in results if isinstance(b, Backend)]
    chosen = [b for b in backends if b.name == name] or backends
    if not chosen:
        raise PluginLoadError(f"plugin {name!r} did not return a runtimed.backend.Backend from runtimed_backend()")
    return chosen[0]
