"""Every DistCache hook specification, and nothing else.

Registration hooks run once while a node starts. Each receives a ``register`` callback; the
plugin calls it for every named thing it provides, and the core then calls those things
directly. No hook is ever called per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "distcache"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# --- registration hooks (once, at node start) -------------------------------------------------


@hookspec
def distcache_register_storage_engines(register: Callable[[str, Any], None]) -> None:
    """Register storage engine factories.

    Called once at node start, before the engine named by ``node.storage`` is built.

    :param register: call as ``register(name, factory)``; ``factory(settings)`` returns a
        :class:`~distcache_core.contracts.StorageEngine`. ``settings`` is the structured
        ``[plugins.<name>]`` section if the plugin registered one, else None.
    """


@hookspec
def distcache_register_persistence(register: Callable[[str, Any], None]) -> None:
    """Register persistence factories, selected by ``node.persistence`` (a list, in order).

    :param register: call as ``register(name, factory)``; ``factory(settings, data_dir)``
        returns a :class:`~distcache_core.contracts.Persistence`.
    """


@hookspec
def distcache_register_hash_strategies(register: Callable[[str, Any], None]) -> None:
    """Register hash strategy factories, selected by ``cluster.hashing``.

    :param register: call as ``register(name, factory)``; ``factory(settings)`` returns a
        :class:`~distcache_core.contracts.HashStrategy`.
    """


@hookspec
def distcache_register_fault_policies(register: Callable[[str, Any], None]) -> None:
    """Register fault policy factories, selected by ``cluster.fault_policy``.

    :param register: call as ``register(name, factory)``; ``factory(settings)`` returns a
        :class:`~distcache_core.contracts.FaultPolicy`.
    """


@hookspec
def distcache_register_metrics_sinks(register: Callable[[str, Any], None]) -> None:
    """Register metrics sink factories, selected by ``node.metrics`` (a list).

    :param register: call as ``register(name, factory)``; ``factory(settings)`` returns a
        :class:`~distcache_core.contracts.MetricsSink`.
    """


@hookspec
def distcache_register_commands(register: Callable[[Any], None]) -> None:
    """Register commands. Always on: every loaded plugin's commands are served.

    :param register: call as ``register(command)`` with a
        :class:`~distcache_core.command_table.Command`. Two plugins registering the same
        command name is a start-up error naming both.
    """


@hookspec
def distcache_config_sections(register: Callable[..., None]) -> None:
    """Register the attrs class that validates a plugin's ``[plugins.<name>]`` config table.

    :param register: call as ``register(name, cls, env={"ENV_VAR": "field"})``. ``cls`` is an
        attrs class whose fields all have defaults; ``env`` maps environment variables to field
        names (optional).
    """


# --- event hooks (rare, never per request) ----------------------------------------------------


@hookspec
def distcache_node_started(node: Any) -> None:
    """Called once the node listens. :param node: the running :class:`~distcache_core.node.Node`."""


@hookspec
def distcache_node_stopping(node: Any) -> None:
    """Called when the node begins a graceful shutdown, before connections close."""


@hookspec
def distcache_membership_changed(node: Any, event: Any) -> None:
    """Called when a cluster member joins, becomes suspect, goes down or leaves."""


@hookspec
def distcache_http_routes(app: Any, node: Any) -> None:
    """Add routes to the node's aiohttp dashboard application before it starts."""
