"""The dashboard: a live HTML page, a JSON API, Prometheus metrics and a health check, served
by aiohttp on the node's own event loop (``node.metrics = ["dashboard"]``).

Registers the metrics sink ``dashboard`` and the config table ``[plugins.dashboard]``
(:class:`DashboardSettings`). Routes: ``/`` (the page), ``/api/stats``, ``/api/cluster``,
``/metrics``, ``/health``; other plugins add theirs through ``distcache_http_routes``.
Read-only: no route changes the node, and none shows ``requirepass`` or ``cluster.secret``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distcache_core.hookspecs import hookimpl

from .app import DashboardSink
from .settings import DashboardSettings

__all__ = ["DashboardSettings", "DashboardSink"]

NAME = "dashboard"


@hookimpl
def distcache_register_metrics_sinks(register: Callable[[str, Any], None]) -> None:
    register(NAME, DashboardSink)


@hookimpl
def distcache_config_sections(register: Callable[..., None]) -> None:
    register(NAME, DashboardSettings)
