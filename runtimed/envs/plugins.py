"""Plugin hooks (pluggy) and discovery of backends from entry points.

Discovery reads entry-point metadata only and never imports a plugin; importing
happens in that backend's worker process (:func:`load_backend`), so a plugin that
fails to import, raises or crashes harms nothing but itself.

Loading refuses to guess: a backend name registered by two distributions is
broken (both are listed with the error, neither is served), and so is a plugin
whose backend's ``name`` differs from its entry-point name.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

import attrs
import pluggy
from attrs import define

from runtimed.backend import PROJECT, Backend, hookimpl

__all__ = [
    "PROJECT",
    "BackendSpec",
    "PluginInfo",
    "PluginLoadError",
    "discover_all",
    "discover_plugins",
    "hookimpl",
    "hookspec",
    "load_backend",
]

hookspec = pluggy.HookspecMarker(PROJECT)


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
    error: str | None = None  # set when discovery already knows it cannot be served


class PluginLoadError(Exception):
    """A plugin could not be imported or did not provide a backend."""


def _entry_points() -> list[EntryPoint]:
    return list(entry_points(group=PROJECT))


def discover_all() -> list[PluginInfo]:
    """Every backend entry point, one per distribution; duplicates carry an error."""
    infos = []
    for ep in _entry_points():
        dist = ep.dist
        infos.append(
            PluginInfo(
                name=ep.name,
                value=ep.value,
                distribution=dist.metadata["Name"] if dist is not None else "?",
                version=dist.version if dist is not None else "?",
            )
        )
    by_name: dict[str, list[PluginInfo]] = {}
    for info in infos:
        by_name.setdefault(info.name, []).append(info)
    result = []
    for name, same in by_name.items():
        if len({(i.distribution, i.value) for i in same}) > 1:
            dists = " and ".join(f"{i.distribution} {i.version} ({i.value})" for i in same)
            error = f"backend name {name!r} is registered by {dists}; uninstall one of them"
            result += [attrs.evolve(i, error=error) for i in same]
        else:
            result.append(same[0])  # the same distribution seen twice on the path
    return result


def discover_plugins() -> dict[str, PluginInfo]:
    """Backends by name, from entry-point metadata. A name registered twice maps to
    an info with ``error`` set (see :func:`discover_all`)."""
    found: dict[str, PluginInfo] = {}
    for info in discover_all():
        if info.name not in found or info.error is not None:
            found[info.name] = info
    return found


def load_backend(name: str) -> Backend:
    """Import plugin ``name`` into a fresh PluginManager and return its backend.

    Raises :class:`PluginLoadError` with the reason if anything goes wrong.
    """
    eps = [ep for ep in _entry_points() if ep.name == name]
    if not eps:
        raise PluginLoadError(f"no backend plugin named {name!r} is installed (entry-point group {PROJECT!r})")
    info = discover_plugins()[name]
    if info.error is not None:
        raise PluginLoadError(info.error)
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
    if not backends:
        raise PluginLoadError(f"plugin {name!r} did not return a runtimed.backend.Backend from runtimed_backend()")
    chosen = [b for b in backends if b.name == name]
    if not chosen:
        names = ", ".join(repr(b.name) for b in backends)
        raise PluginLoadError(
            f"entry point {name!r} ({eps[0].value}) returned a backend named {names}; "
            f"the backend's name must equal its entry-point name"
        )
    return chosen[0]
