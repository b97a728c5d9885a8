"""Finding, loading and asking plugins.

Plugins come from three places, in this order: the default list below (loaded exactly like a
third-party plugin), the ``distcache`` entry-point group of installed distributions (switched
off by ``DISTCACHE_DISABLE_PLUGIN_AUTOLOAD=1``), and module names in ``node.plugins``.

Registration hooks are called once, here, and what they register is kept in a
:class:`Registry` the node builds its objects from. Nothing here runs per request.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from types import ModuleType
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .command_table import Command
from .errors import PluginError

#: Built-in plugins, by module name. The core knows them only through this tuple.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "distcache_core.builtin.connection",
    "distcache_core.builtin.server",
    "distcache_core.builtin.strings",
    "distcache_core.builtin.keys",
    "distcache_core.builtin.bits",
    "distcache_core.scripting",
    "distcache_core.builtin.databases",
    "distcache_core.builtin.transactions",
    "distcache_core.builtin.inspection",
    "distcache_core.builtin.memory",
    "distcache_core.cluster.commands",
    "distcache_plugins.lru_ttl",
    "distcache_plugins.vnode_ring",
    "distcache_plugins.circuit_breaker",
    "distcache_plugins.wal",
    "distcache_plugins.mmap_snapshot",
    "distcache_plugins.lmdb_snapshot",
    "distcache_plugins.dashboard",
)

ENTRY_POINT_GROUP = "distcache"
DISABLE_AUTOLOAD_ENV = "DISTCACHE_DISABLE_PLUGIN_AUTOLOAD"


def get_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager that knows every DistCache hook and no plugin yet."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def autoload_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}


def _import_plugin(module_name: str, origin: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except Exception as exc:  # any failure inside the plugin is the plugin's, name it
        raise PluginError(
            f"plugin {module_name!r} ({origin}) failed to import: {type(exc).__name__}: {exc}"
        ) from exc


@attrs.define
class PluginHost:
    """A plugin manager with its plugins loaded, and where each came from."""

    pm: pluggy.PluginManager
    #: plugin name -> "default", "entry point <dist> <version>" or "config"
    origins: dict[str, str] = attrs.Factory(dict)

    def register_module(self, module: ModuleType | object, name: str, origin: str) -> None:
        if self.pm.is_registered(module):
            return  # a default plugin also listed as an entry point is loaded once
        if self.pm.get_plugin(name) is not None:
            raise PluginError(
                f"plugin name {name!r} ({origin}) is already taken by {self.origins[name]}"
            )
        self.pm.register(module, name=name)
        self.origins[name] = origin


def load_plugins(
    extra_modules: Iterable[str] = (),
    *,
    autoload: bool | None = None,
    extra_objects: Iterable[tuple[str, object]] = (),
) -> PluginHost:
    """Load the default plugins, the entry-point plugins (unless autoload is off) and
    ``extra_modules`` (from ``node.plugins``). ``extra_objects`` are (name, plugin object)
    pairs, for tests and embedding.

    Raises :class:`PluginError` naming the plugin that failed to import.
    """
    host = PluginHost(get_plugin_manager())
    for module_name in DEFAULT_PLUGINS:
        host.register_module(_import_plugin(module_name, "default"), module_name, "default")
    if autoload_enabled() if autoload is None else autoload:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist
            origin = f"entry point of {dist.name} {dist.version}" if dist else "entry point"
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin {ep.name!r} ({origin}, {ep.value}) failed to import: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            host.register_module(plugin, ep.name, origin)
    for module_name in extra_modules:
        host.register_module(_import_plugin(module_name, "config node.plugins"), module_name,
                             "config node.plugins")
    for name, plugin in extra_objects:
        host.register_module(plugin, name, "embedded")
    try:
        host.pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc)) from exc
    return host


@attrs.frozen
class Registration:
    """One named thing a plugin registered."""

    name: str
    obj: Any
    plugin: str
    #: For config sections: environment variable -> field name.
    env: Mapping[str, str] = attrs.field(factory=dict)


#: registry attribute -> (hook name, what the thing is called in messages)
_KINDS: dict[str, tuple[str, str]] = {
    "storage_engines": ("distcache_register_storage_engines", "storage engine"),
    "persistence": ("distcache_register_persistence", "persistence plugin"),
    "hash_strategies": ("distcache_register_hash_strategies", "hash strategy"),
    "fault_policies": ("distcache_register_fault_policies", "fault policy"),
    "metrics_sinks": ("distcache_register_metrics_sinks", "metrics sink"),
    "commands": ("distcache_register_commands", "command"),
    "config_sections": ("distcache_config_sections", "config section"),
}


@attrs.define
class Registry:
    """Everything the loaded plugins registered, by kind then name."""

    storage_engines: dict[str, Registration] = attrs.Factory(dict)
    persistence: dict[str, Registration] = attrs.Factory(dict)
    hash_strategies: dict[str, Registration] = attrs.Factory(dict)
    fault_policies: dict[str, Registration] = attrs.Factory(dict)
    metrics_sinks: dict[str, Registration] = attrs.Factory(dict)
    commands: dict[str, Registration] = attrs.Factory(dict)
    config_sections: dict[str, Registration] = attrs.Factory(dict)

    @classmethod
    def collect(cls, pm: pluggy.PluginManager) -> Registry:
        """Call every registration hook of every plugin once.

        Each hook implementation is called on its own so that the registry knows which plugin
        registered what, and a name registered twice can name both plugins.
        """
        registry = cls()
        for attribute, (hook_name, kind) in _KINDS.items():
            table: dict[str, Registration] = getattr(registry, attribute)
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                register = _make_register(table, kind, impl.plugin_name, attribute)
                impl.function(*[register for _ in impl.argnames])
        return registry

    def by_plugin(self) -> dict[str, list[tuple[str, str]]]:
        """plugin name -> [(kind, name)], for `distcache plugins`."""
        out: dict[str, list[tuple[str, str]]] = {}
        for attribute, (_, kind) in _KINDS.items():
            for registration in getattr(self, attribute).values():
                out.setdefault(registration.plugin, []).append((kind, registration.name))
        return out


def _make_register(
    table: dict[str, Registration], kind: str, plugin: str, attribute: str
) -> Callable[..., None]:
    def add(name: str, obj: Any, env: Mapping[str, str] | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r} registered a {kind} with a bad name {name!r}")
        previous = table.get(name)
        if previous is not None:
            raise PluginError(
                f"{kind} {name!r} is registered by both plugin {previous.plugin!r} "
                f"and plugin {plugin!r}"
            )
        table[name] = Registration(name, obj, plugin, dict(env or {}))

    if attribute == "commands":

        def register_command(command: Command) -> None:
            if not isinstance(command, Command):
                raise PluginError(
                    f"plugin {plugin!r} registered {command!r}; expected a "
                    "distcache_core.Command"
                )
            add(command.name, command)

        return register_command
    if attribute == "config_sections":

        def register_section(name: str, cls: type, env: Mapping[str, str] | None = None) -> None:
            if not attrs.has(cls):
                raise PluginError(
                    f"plugin {plugin!r} registered config section {name!r} with {cls!r}, "
                    "which is not an attrs class"
                )
            add(name, cls, env)

        return register_section
    return add
